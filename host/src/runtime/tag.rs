//! Who a guest instance is: the name every log line, budget report and
//! grant check of the instance carries. A file of its own because the
//! instance's store data (`state.rs`) and the host imports it serves
//! (`budget.rs`, `producer.rs`, `sandbox.rs`) all name it, and none of
//! them should import another for it.

use std::sync::Arc;

/// Who a guest instance is, for log lines: component, pipeline, partition.
#[derive(Debug, Clone)]
pub struct GuestTag {
    /// The component's name in the config.
    pub component: Arc<str>,
    /// The pipeline it runs in.
    pub pipeline: Arc<str>,
    /// The topic-partition this instance serves, if any (`check` has none).
    pub partition: Option<(Arc<str>, i32)>,
}

impl GuestTag {
    /// The topic and partition for log fields (`""` and -1 for none).
    pub fn topic_partition(&self) -> (&str, i32) {
        match &self.partition {
            Some((topic, p)) => (topic, *p),
            None => ("", -1),
        }
    }
}
