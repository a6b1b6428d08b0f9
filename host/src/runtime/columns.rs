//! The verdicts of the columnar worlds (since contract 0.2.2) as the host's
//! one verdict type. The batch itself needs no conversion: the host keeps
//! it in columns from the start ([`crate::contract::Batch`]).

use crate::contract::bindings::columnar_interceptor::exports::flumen::pipeline::columnar_interception as ci;
use crate::contract::bindings::columnar_sink::exports::flumen::pipeline::columnar_delivery as cd;
use crate::contract::bindings::{Action, InterceptorVerdict, Replacement, SinkVerdict};

/// A columnar sink's verdict as the host's one verdict type.
pub fn sink_verdict(v: cd::Verdict) -> SinkVerdict {
    match v {
        cd::Verdict::Delivered => SinkVerdict::Delivered,
        cd::Verdict::Retry(why) => SinkVerdict::Retry(why),
        cd::Verdict::Reject(why) => SinkVerdict::Reject(why),
    }
}

/// A columnar interceptor's verdict as the host's one verdict type.
pub fn interceptor_verdict(v: ci::Verdict) -> InterceptorVerdict {
    InterceptorVerdict {
        action: match v.action {
            ci::Action::Keep => Action::Keep,
            ci::Action::Drop => Action::Drop,
            ci::Action::Replace(r) => Action::Replace(Replacement {
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }),
        },
        route: v.route,
    }
}
