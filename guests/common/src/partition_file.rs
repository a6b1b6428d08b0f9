//! The file a file-writing sink appends a partition's events to.

/// One output file per partition. Each partition is served by its own guest
/// instance, and instances appending to one shared file would interleave
/// their writes (WASI splits a large write into several), tearing lines.
/// So the `path` template must contain `%{partition}` (and may contain
/// `%{topic}`); the file is opened on the first batch, when they are known.
/// A sink with several calls in flight per partition (`max_in_flight`) has
/// several instances per partition: its template must also contain
/// `%{instance}`, which each instance fills with an id of its own.
pub struct PartitionFile {
    template: String,
    open: Option<(String, std::fs::File)>,
}

impl PartitionFile {
    /// Checks the template and that its directory is visible to the guest.
    pub fn new(template: &str) -> Result<Self, String> {
        if !template.contains("%{partition}") {
            return Err(format!(
                "config key `path` must contain `%{{partition}}` (got `{template}`): each \
                 partition has its own sink instance, and instances sharing one file would \
                 interleave their lines; e.g. \"/out/events-%{{topic}}-%{{partition}}.jsonl\""
            ));
        }
        if let Some((dir, _)) = template.rsplit_once('/') {
            let dir = if dir.is_empty() { "/" } else { dir };
            if !dir.contains("%{") && !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
                return Err(format!(
                    "directory `{dir}` of `path` is not visible to this component: grant it \
                     read-write with `dirs` in the host config"
                ));
            }
        }
        // Random per instance: `RandomState` is seeded from WASI's random.
        use std::hash::BuildHasher;
        let id = std::collections::hash_map::RandomState::new().hash_one(0u8);
        Ok(Self {
            template: template.replace("%{instance}", &format!("{id:016x}")),
            open: None,
        })
    }

    /// The file for `topic`/`partition`, opened for appending on first use.
    pub fn get(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<(&str, &mut std::fs::File), String> {
        let path = self
            .template
            .replace("%{topic}", topic)
            .replace("%{partition}", &partition.to_string());
        if self.open.as_ref().is_none_or(|(p, _)| *p != path) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open `{path}` for appending: {e}"))?;
            end_torn_line(&mut file)
                .map_err(|e| format!("cannot read the end of `{path}`: {e}"))?;
            self.open = Some((path, file));
        }
        match self.open.as_mut() {
            Some((p, f)) => Ok((p.as_str(), f)),
            None => Err("no open file".to_owned()),
        }
    }
}

/// Ends the file's last line if it has no newline. A process killed while
/// appending (a SIGKILL, a crash, a power cut) leaves its last line torn;
/// the events on it were not acknowledged, so they come again. Without the
/// newline, the first line appended now would be fused to the torn one, and
/// no line reader would find its event.
fn end_torn_line(file: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if file.metadata()?.len() == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn appended(before: &[u8]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "flumen-partition-file-{}-{}",
            std::process::id(),
            before.len()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out-0.jsonl");
        std::fs::write(&path, before).expect("write");
        let template = format!("{}/out-%{{partition}}.jsonl", dir.display());
        let mut file = PartitionFile::new(&template).expect("template");
        let (_, f) = file.get("t", 0).expect("open");
        f.write_all(b"{\"offset\":2}\n").expect("append");
        let after = std::fs::read(&path).expect("read");
        std::fs::remove_dir_all(&dir).expect("clean up");
        after
    }

    #[test]
    fn a_torn_last_line_is_ended_before_appending() {
        assert_eq!(
            appended(b"{\"offset\":0}\n{\"offs"),
            b"{\"offset\":0}\n{\"offs\n{\"offset\":2}\n"
        );
    }

    #[test]
    fn a_whole_or_empty_file_is_appended_to_as_is() {
        assert_eq!(
            appended(b"{\"offset\":0}\n"),
            b"{\"offset\":0}\n{\"offset\":2}\n"
        );
        assert_eq!(appended(b""), b"{\"offset\":2}\n");
    }
}
