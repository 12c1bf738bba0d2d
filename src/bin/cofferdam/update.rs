//! `update`: `-r FILE` (or `-` for stdin), else runc's per-field flags; the library reads both
//! ([`cofferdam::update`]) and merges the result into the resources in force.

use cofferdam::{Container, Error};

use crate::CliError;
use crate::args::Args;

pub fn update(a: &Args, c: &Container) -> Result<(), CliError> {
    let resources = match a.get("resources") {
        Some(file) => {
            let data = if file == "-" {
                cofferdam::spec::read_bounded(std::io::stdin(), "stdin".as_ref())?
            } else {
                cofferdam::spec::read_input(file.as_ref())?
            };
            cofferdam::update::parse_resources(&data, file.as_ref())?
        }
        None => {
            // The table holds `resources` and exactly the library's flags.
            let flags = a.opts.iter().map(|(n, v)| (*n, v.as_str()));
            match cofferdam::update::resources_from_flags(flags) {
                Ok(r) => r,
                // A value that does not parse is a usage error, as it was before the library
                // read them.
                Err(e @ Error::InvalidValue { .. }) => {
                    return Err(CliError::Usage(format!("update: {e}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    c.update(&resources)?;
    Ok(())
}
