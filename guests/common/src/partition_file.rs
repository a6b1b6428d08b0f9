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
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open `{path}` for appending: {e}"))?;
            self.open = Some((path, file));
        }
        match self.open.as_mut() {
            Some((p, f)) => Ok((p.as_str(), f)),
            None => Err("no open file".to_owned()),
        }
    }
}
