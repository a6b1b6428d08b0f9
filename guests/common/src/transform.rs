//! Library interceptors that look at one event at a time: the
//! [`Transform`] trait and [`transform_interceptor!`], which makes a
//! component of one.

use crate::config::Config;

/// One event as a library interceptor sees it: its fields, copied out of
/// the batch's columns and moved into a `Replacement` when the interceptor
/// changed them.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers as `(name, value)`, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Fields {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets header `name` to `value`: replaces every header of that name
    /// (keeping the first one's place) or appends one. With `preserve`, an
    /// existing header is left as it is. Returns whether anything changed.
    pub fn set_header(&mut self, name: &str, value: Vec<u8>, preserve: bool) -> bool {
        match self.headers.iter().position(|(n, _)| n == name) {
            Some(_) if preserve => false,
            Some(first) => {
                self.headers[first].1 = value;
                let mut i = 0;
                self.headers.retain(|(n, _)| {
                    i += 1;
                    i - 1 == first || n != name
                });
                true
            }
            None => {
                self.headers.push((name.to_owned(), value));
                true
            }
        }
    }
}

/// What a library interceptor did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed on unchanged.
    Keep,
    /// Passed on with the changes made to its [`Fields`].
    Changed,
    /// Dropped.
    Drop,
}

/// A library interceptor: configured once, then applied to each event.
/// [`transform_interceptor!`] turns an implementation into a component.
pub trait Transform: Sized {
    /// The config keys it accepts; any other key is refused at `init`.
    const KEYS: &'static [&'static str];
    /// Builds the interceptor from its config, or says what is wrong.
    fn new(config: &Config) -> Result<Self, String>;
    /// Applies it to one event of `topic`/`partition` at `offset`.
    fn apply(&mut self, topic: &str, partition: i32, offset: i64, event: &mut Fields) -> Outcome;
}

/// A `preserve_existing` key (`true`/`false`): whether a header the event
/// already has is kept rather than overwritten.
pub fn preserve_existing(config: &Config, default: bool) -> Result<bool, String> {
    config.bool_or("preserve_existing", default)
}

/// A header name from config key `key`, or `default`; never empty.
pub fn header_name(config: &Config, key: &str, default: &str) -> Result<String, String> {
    match config.get(key).unwrap_or(default) {
        "" => Err(format!("config key `{key}` must not be empty")),
        name => Ok(name.to_owned()),
    }
}

/// Makes the interceptor component of a [`Transform`]: generates the
/// `interceptor` world's bindings from `wit/` and exports them,
/// calling `Transform::new` from `init` and `Transform::apply` for each event
/// of a batch. The crate must depend on `wit-bindgen` and sit two folders
/// below `guests/` (as `guests/library/<name>` does): the WIT path is
/// relative to it.
///
/// Each event's fields are copied out of the batch's columns into the
/// [`Fields`] that `apply` may change, and moved into a replacement when it
/// did; the answer holds no action bytes at all while every event is kept.
#[macro_export]
macro_rules! transform_interceptor {
    ($t:ty) => {
        wit_bindgen::generate!({ world: "interceptor", path: "../../../wit" });

        use exports::flumen::pipeline::interception as __interception;
        use flumen::pipeline::types::Header as __Header;

        std::thread_local! {
            static __STATE: std::cell::RefCell<Option<$t>> =
                const { std::cell::RefCell::new(None) };
        }

        struct __Interceptor;

        impl __interception::Guest for __Interceptor {
            fn init(config: Vec<(String, String)>) -> Result<(), String> {
                let config = $crate::Config::new(config, <$t as $crate::Transform>::KEYS)?;
                let state = <$t as $crate::Transform>::new(&config)?;
                __STATE.with(|s| *s.borrow_mut() = Some(state));
                Ok(())
            }

            fn process(
                source: __interception::Source,
                batch: __interception::Columns,
            ) -> Result<__interception::Verdicts, String> {
                let batch = $crate::columns!(batch)?;
                __STATE.with(|s| {
                    let mut s = s.borrow_mut();
                    let t = s.as_mut().ok_or("process called before init")?;
                    let mut actions = $crate::answer::Actions::new(batch.len());
                    let mut replacements = Vec::new();
                    for (i, e) in batch.iter().enumerate() {
                        let mut fields = $crate::Fields {
                            timestamp: e.timestamp,
                            key: e.key.map(<[u8]>::to_vec),
                            value: e.value.map(<[u8]>::to_vec),
                            headers: e
                                .headers()
                                .map(|(name, value)| (name.to_owned(), value.to_vec()))
                                .collect(),
                        };
                        let outcome = <$t as $crate::Transform>::apply(
                            t, &source.topic, source.partition, e.offset, &mut fields,
                        );
                        match outcome {
                            $crate::Outcome::Keep => {}
                            $crate::Outcome::Drop => actions.set(i, $crate::answer::DROP),
                            $crate::Outcome::Changed => {
                                actions.set(i, $crate::answer::REPLACE);
                                replacements.push(__interception::Replacement {
                                    timestamp: fields.timestamp,
                                    key: fields.key,
                                    value: fields.value,
                                    headers: fields
                                        .headers
                                        .into_iter()
                                        .map(|(name, value)| __Header { name, value })
                                        .collect(),
                                });
                            }
                        }
                    }
                    Ok(__interception::Verdicts {
                        actions: actions.into_bytes(),
                        replacements,
                        routes: Vec::new(),
                    })
                })
            }
        }

        export!(__Interceptor);
    };
}
