//! Run an OCI image: what `podman run` does before it calls the runtime. An image layout (a
//! directory, or a `.tar` of one as `podman save --format oci-archive` makes) holds
//! `index.json`, which names a manifest, which names a config and the layers, each a blob under
//! `blobs/sha256/` named by its digest (checked here). The layers are tar files (usually
//! gzipped), unpacked in order into one directory: a `.wh.NAME` entry deletes NAME from the
//! layers below (a *whiteout*), `.wh..wh..opq` empties its directory first. The config's
//! Entrypoint, Cmd, Env, WorkingDir and User become the runtime spec's process, and the
//! container runs on the unpacked rootfs.
//!
//! ```sh
//! podman save --format oci-archive -o /tmp/img.tar docker.io/library/busybox
//! cargo run --example run_image -- /tmp/img.tar              # as root
//! cargo run --example run_image -- /tmp/img.tar echo hello   # replaces the image's Cmd
//! ```
//!
//! What to look at: each layer's entries and whiteouts, the image config beside the spec made
//! from it, then the container's own output and exit status.

mod common;

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cofferdam::oci_spec::runtime::User;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest, Sha256};

/// `rel` below `root`, refusing `..`, absolute paths and symlinks on the way (the last
/// component itself may be one): an image's paths must never lead us (root, on the host) out
/// of its rootfs, as a layer's `etc -> /etc` and a later `etc/.wh.passwd` would.
fn inside(root: &Path, rel: &Path) -> common::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                if path != root && path.symlink_metadata()?.file_type().is_symlink() {
                    return Err(format!("{} goes through a symlink", rel.display()).into());
                }
                path.push(name);
            }
            Component::CurDir => {}
            _ => return Err(format!("{} leaves the rootfs", rel.display()).into()),
        }
    }
    Ok(path)
}

/// A blob of the layout, its size and sha256 checked against the descriptor.
fn blob(layout: &Path, d: &Descriptor) -> common::Result<Vec<u8>> {
    let digest = d.digest();
    let path = layout
        .join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest());
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sum = format!("{:x}", Sha256::digest(&data));
    if data.len() as u64 != d.size() || sum != digest.digest() {
        return Err(format!("{}: does not match its digest or size", path.display()).into());
    }
    Ok(data)
}

/// The manifest for this machine: the first one `index.json` names for linux on our
/// architecture (or for no platform), looking into nested indexes.
fn manifest(layout: &Path, index: &ImageIndex) -> common::Result<ImageManifest> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    for d in index.manifests() {
        let ours = d
            .platform()
            .as_ref()
            .is_none_or(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch);
        match d.media_type() {
            _ if !ours => {}
            MediaType::ImageIndex => {
                let nested = ImageIndex::from_reader(&blob(layout, d)?[..])?;
                return manifest(layout, &nested);
            }
            _ => return Ok(ImageManifest::from_reader(&blob(layout, d)?[..])?),
        }
    }
    Err(format!("no manifest for linux/{arch} in the image").into())
}

/// One layer's tar, gunzipped if it is gzip (by its magic number, whatever the media type).
fn layer_tar(data: &[u8]) -> common::Result<Box<dyn Read + '_>> {
    match data {
        [0x1f, 0x8b, ..] => Ok(Box::new(flate2::read::GzDecoder::new(data))),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Err("zstd layers are not supported here".into()),
        _ => Ok(Box::new(data)),
    }
}

/// Apply a layer to `rootfs`: first its whiteouts, to what the layers below left; then its
/// files. Returns (entries, whiteouts).
fn apply_layer(rootfs: &Path, data: &[u8]) -> common::Result<(usize, usize)> {
    let mut whiteouts = 0;
    for entry in tar::Archive::new(layer_tar(data)?).entries()? {
        let path = entry?.path()?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(hidden) = name.strip_prefix(".wh.") else {
            continue;
        };
        whiteouts += 1;
        let parent = path.parent().unwrap_or(Path::new(""));
        if hidden == ".wh..opq" {
            // Opaque: the directory's contents from the layers below are gone. (A symlink
            // here would lead out of the rootfs: `is_dir` of symlink_metadata is false.)
            let dir = inside(rootfs, parent)?;
            if dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                for e in std::fs::read_dir(&dir)? {
                    remove(&e?.path())?;
                }
            }
        } else {
            remove(&inside(rootfs, &parent.join(hidden))?)?;
        }
    }
    let mut entries = 0;
    let mut archive = tar::Archive::new(layer_tar(data)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let whiteout = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".wh."));
        // unpack_in refuses paths that would land outside rootfs, through `..` or a symlink.
        if !whiteout && entry.unpack_in(rootfs)? {
            entries += 1;
        }
    }
    Ok((entries, whiteouts))
}

fn remove(path: &Path) -> std::io::Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()), // nothing to delete
    }
}

/// `user`, `uid`, `user:group` or `uid:gid` to numbers, names looked up in the image's
/// `/etc/passwd` and `/etc/group` (never the host's).
fn resolve_user(rootfs: &Path, spec: &str) -> common::Result<(u32, u32)> {
    let lookup = |file: &str, name: &str| -> common::Result<Option<(u32, u32)>> {
        let path = inside(rootfs, Path::new(file))?;
        let text = match path.symlink_metadata() {
            Ok(m) if m.is_file() => std::fs::read_to_string(&path)?,
            _ => return Ok(None),
        };
        Ok(text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let id = |i: usize| f.get(i).and_then(|v| v.parse().ok());
            (f[0] == name).then(|| Some((id(2)?, id(3).unwrap_or(0))))?
        }))
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match user.parse() {
        Ok(uid) => (uid, 0),
        Err(_) => lookup("etc/passwd", user)?
            .ok_or_else(|| format!("user {user:?} is not in the image's /etc/passwd"))?,
    };
    if let Some(g) = group {
        gid = match g.parse() {
            Ok(gid) => gid,
            Err(_) => {
                lookup("etc/group", g)?
                    .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group"))?
                    .0
            }
        };
    }
    Ok((uid, gid))
}

fn main() -> common::Result<()> {
    let mut argv = std::env::args().skip(1);
    let Some(image) = argv.next() else {
        eprintln!("usage: run_image IMAGE [ARG...]   (IMAGE: an OCI layout dir or .tar)");
        std::process::exit(2);
    };
    let override_cmd: Vec<String> = argv.collect();
    let scratch = common::Scratch::new("image")?;

    // The layout: a directory, or a tar of one (unpacked first).
    let mut layout = PathBuf::from(&image);
    if layout.is_file() {
        let dir = scratch.dir.join("layout");
        tar::Archive::new(std::fs::File::open(&layout)?).unpack(&dir)?;
        layout = dir;
    }
    let index_path = layout.join("index.json");
    let index = ImageIndex::from_file(&index_path).map_err(|e| {
        let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
        format!("{}: {why}", index_path.display())
    })?;
    let manifest = manifest(&layout, &index)?;
    let config = ImageConfiguration::from_reader(&blob(&layout, manifest.config())?[..])?;
    println!(
        "image: {} layers, config {}",
        manifest.layers().len(),
        manifest.config().digest()
    );

    let rootfs = scratch.dir.join("rootfs");
    std::fs::create_dir(&rootfs)?;
    for (n, layer) in manifest.layers().iter().enumerate() {
        let (entries, whiteouts) = apply_layer(&rootfs, &blob(&layout, layer)?)?;
        println!(
            "layer {}: {} ({}): {entries} entries, {whiteouts} whiteouts",
            n + 1,
            layer.digest(),
            layer.media_type()
        );
    }

    // The image config, as the runtime spec's process.
    let c = config.config().clone().unwrap_or_default();
    println!(
        "config: Entrypoint {:?} Cmd {:?} Env {:?} WorkingDir {:?} User {:?}",
        c.entrypoint(),
        c.cmd(),
        c.env(),
        c.working_dir(),
        c.user()
    );
    let mut args = c.entrypoint().clone().unwrap_or_default();
    if override_cmd.is_empty() {
        args.extend(c.cmd().clone().unwrap_or_default());
    } else {
        args.extend(override_cmd);
    }
    if args.is_empty() {
        return Err("the image has no Entrypoint or Cmd, and none was given".into());
    }
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let cwd = c.working_dir().clone().filter(|d| !d.is_empty());
    let (uid, gid) = resolve_user(&rootfs, c.user().as_deref().unwrap_or("0"))?;

    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut spec = scratch.spec("ctr", &args_ref);
    let p = spec.process_mut().as_mut().expect("a process");
    p.set_env(Some(env.clone()));
    p.set_cwd(cwd.clone().unwrap_or_else(|| "/".into()).into());
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    p.set_user(user);
    // The unpacked rootfs is this container's own copy: writable, as with podman.
    spec.root_mut()
        .as_mut()
        .expect("a root")
        .set_readonly(Some(false));
    println!(
        "spec: args {args:?} env {env:?} cwd {:?} user {uid}:{gid}",
        cwd.as_deref().unwrap_or("/")
    );

    let code = scratch.run("ctr", spec, &rootfs)?;
    println!("container exited {code}");
    drop(scratch); // clean up before exit, which runs no destructors
    std::process::exit(code)
}
