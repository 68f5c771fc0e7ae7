//! `shmsg inspect NAME` and `shmsg clean`: named regions under /dev/shm.

use std::path::PathBuf;

use shmsg::shm::Region;
use shmsg::shm::region::{PREFIX, RegionInfo, SHM_DIR};
use shmsg::{Endpoint, Error};

use super::{CleanArgs, InspectArgs};
use crate::failure::Failure;

/// A region's name from `NAME`.
fn region_name(endpoint: &str) -> Result<String, Failure> {
    match Endpoint::parse(endpoint) {
        Ok(Endpoint::Shm(_) | Endpoint::Mpsc(_)) => Err(Failure::Usage(format!(
            "{endpoint} keeps its rings in anonymous memory handed to each client over a \
             socket, not in a named region; `shmsg inspect NAME` shows a region made with \
             the Region API (a file {SHM_DIR}/{PREFIX}NAME)"
        ))),
        Ok(_) => Err(Failure::Usage(format!(
            "{endpoint:?} is not a region; `shmsg inspect NAME` shows the named region \
             {SHM_DIR}/{PREFIX}NAME"
        ))),
        Err(_) if !endpoint.contains(':') => {
            let name = endpoint.strip_prefix(PREFIX).unwrap_or(endpoint);
            shmsg::shm::region::validate_name(name)?;
            Ok(name.to_string())
        }
        Err(e) => Err(e.into()),
    }
}

/// `shmsg inspect NAME`: the named region `NAME`.
pub fn inspect(args: InspectArgs) -> Result<(), Failure> {
    let name = region_name(&args.endpoint)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(SHM_DIR));
    let infos = Region::list_in(&dir)?;
    let found: Vec<&RegionInfo> = infos.iter().filter(|i| i.name == name).collect();
    if found.is_empty() {
        return Err(Failure::Hint {
            error: Error::Io {
                context: format!(
                    "no region {name:?} in {} (no file {PREFIX}{name})",
                    dir.display()
                ),
                source: std::io::ErrorKind::NotFound.into(),
            },
            hint: "check the name; `shmsg clean` lists the regions there".into(),
        });
    }
    let mut out = String::new();
    for info in found {
        let path = dir.join(format!("{PREFIX}{}", info.name));
        if args.json {
            out.push_str(&crate::inspect::to_json(&path, info));
        } else {
            crate::inspect::describe(&path, info, &mut out);
        }
    }
    print!("{out}");
    Ok(())
}

/// `shmsg clean`: lists every region and removes (with `--yes`) those no
/// live process uses.
pub fn clean(args: CleanArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(SHM_DIR));
    let infos = Region::list_in(&dir).map_err(|e| Failure::Hint {
        error: e,
        hint: format!("{} must be a readable directory", dir.display()),
    })?;
    if infos.is_empty() {
        println!("no shmsg regions in {}", dir.display());
        return Ok(());
    }
    for info in &infos {
        let state = if !info.accessible {
            format!(
                "cannot inspect: {}",
                info.validation.as_ref().err().cloned().unwrap_or_default()
            )
        } else if info.is_stale() {
            "stale (creator dead, nobody attached)".into()
        } else {
            let mut users = Vec::new();
            if info.creator_locked {
                users.push("creator alive");
            }
            if info.producer_locked {
                users.push("producer attached");
            }
            if info.consumer_locked {
                users.push("consumer attached");
            }
            format!("in use ({})", users.join(", "))
        };
        println!("{:<40} {:>12} bytes  {state}", info.name, info.size);
    }
    let stale = Region::remove_stale_in(&dir, !args.yes)?;
    if stale.is_empty() {
        println!("nothing to clean: every region is in use");
    } else if args.yes {
        for name in &stale {
            println!("removed {name}");
        }
    } else {
        for name in &stale {
            println!("would remove {name}");
        }
        println!("dry run: run `shmsg clean --yes` to remove them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        assert!(region_name("shm:abc").is_err());
        assert_eq!(region_name("abc").ok(), Some("abc".into()));
        assert_eq!(region_name("abc").ok(), Some("abc".into()));
        assert_eq!(region_name("shmsg.abc").ok(), Some("abc".into()));
        assert!(region_name("unix:/tmp/x").is_err());
        assert!(region_name("../etc").is_err());
    }
}
