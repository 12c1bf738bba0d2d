//! `spec`: write a default `config.json` (`--rootless`: one an unprivileged user can run).

use std::path::PathBuf;

use cofferdam::Error;

use crate::CliError;
use crate::args::Args;

pub fn spec(a: &Args) -> Result<(), CliError> {
    let dir = PathBuf::from(a.get("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(Error::Unsupported(format!(
            "{}: file exists, remove it first",
            path.display()
        ))
        .into());
    }
    let text = if a.has("rootless") {
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        cofferdam::spec::rootless_spec_json(uid.as_raw(), gid.as_raw())
    } else {
        cofferdam::default_spec_json()
    };
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        op: "write",
        path,
        source,
    })?;
    Ok(())
}
