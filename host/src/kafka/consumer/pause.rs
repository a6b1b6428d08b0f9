//! Pausing a partition whose worker queue is full, and resuming it once
//! the queue has drained: first by holding its messages back from the
//! fetch queue, then, if as much again waits in librdkafka, by stopping
//! its fetches, so that a slow partition holds at most about twice its
//! queue bounds in memory.

use super::PipelineConsumer;
use crate::kafka::assignment::lock;
use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use std::sync::atomic::Ordering;

/// What librdkafka keeps per message it holds for a paused partition,
/// beyond the message's bytes: one `rd_kafka_op_t` each. Measured with
/// heaptrack on 100-byte events, four partitions all held: 36 MiB in
/// `rd_kafka_op_new0` for about 120,000 held messages. Without it, a held
/// small event was counted at under a third of its cost, and held messages
/// were most of flumen's peak memory behind a slow sink.
const HELD_MESSAGE_OVERHEAD: usize = 300;

impl PipelineConsumer {
    /// Resumes paused partitions whose queue has drained to half, in events
    /// and in bytes, and stops fetching the others once as much as their
    /// queue bounds waits held back in librdkafka (a partition then holds
    /// at most about twice its bounds). Returns whether a partition is
    /// still paused.
    pub(super) fn tend_paused(&self) -> bool {
        let max_events = self.pipeline.max_queued_events;
        let max_bytes = self.pipeline.max_queued_bytes;
        let mut parts = lock(&self.partitions);
        for (key, h) in parts.iter_mut().filter(|(_, h)| h.paused) {
            let queued = h.shared.queued.load(Ordering::Acquire);
            let queued_bytes = h.shared.queued_bytes.load(Ordering::Acquire);
            if queued <= max_events / 2 && queued_bytes <= max_bytes / 2 {
                if h.fetch_stopped && self.stop_fetching(key, false) {
                    h.fetch_stopped = false;
                }
                if !h.fetch_stopped && self.set_paused(key, false) {
                    h.paused = false;
                }
                continue;
            }
            if h.fetch_stopped {
                continue;
            }
            // Held events are about the size of the queued ones, plus what
            // librdkafka keeps per message.
            let held = self.fetch.held(&self.consumer, &key.0, key.1).unwrap_or(0);
            let held_bytes =
                held.saturating_mul(queued_bytes / queued.max(1) + HELD_MESSAGE_OVERHEAD);
            if (held >= max_events || held_bytes >= max_bytes) && self.stop_fetching(key, true) {
                h.fetch_stopped = true;
            }
        }
        parts.values().any(|h| h.paused)
    }

    /// Pauses or resumes fetching one partition in librdkafka.
    fn stop_fetching(&self, (topic, partition): &(String, i32), stop: bool) -> bool {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, *partition);
        let r = if stop {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        match r {
            Ok(()) => {
                tracing::debug!(%topic, partition, stop, "partition fetching stopped/restarted");
                true
            }
            Err(e) => {
                tracing::warn!(%topic, partition, stop, error = %e,
                    "cannot stop/restart fetching the partition");
                false
            }
        }
    }

    /// Pauses or resumes one partition by holding its messages back from
    /// the fetch queue or releasing them (see [`FetchQueue::hold`]).
    pub(super) fn set_paused(&self, (topic, partition): &(String, i32), pause: bool) -> bool {
        let done = if pause {
            self.fetch.hold(&self.consumer, topic, *partition)
        } else {
            self.fetch.release(&self.consumer, topic, *partition)
        };
        if done {
            let what = if pause {
                "partition paused"
            } else {
                "partition resumed"
            };
            tracing::debug!(%topic, partition, "{what}");
        } else {
            tracing::warn!(%topic, partition, pause,
                "cannot pause/resume partition: librdkafka does not know it");
        }
        done
    }
}
