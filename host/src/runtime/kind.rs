//! The two kinds of guest, interceptors and sinks, each in the form its
//! component exports: records (`interceptor`, `sink`) or columns
//! (`columnar-interceptor`, `columnar-sink`).

use super::state::GuestState;
use crate::contract::bindings::columnar_interceptor::{
    ColumnarInterceptor, ColumnarInterceptorPre,
};
use crate::contract::bindings::columnar_sink::{ColumnarSink, ColumnarSinkPre};
use crate::contract::bindings::interceptor::{Interceptor, InterceptorPre as RecordInterceptorPre};
use crate::contract::bindings::sink::{Sink, SinkPre as RecordSinkPre};
use wasmtime::Store;

/// What differs between the two kinds of guest: their world, bindings and
/// `init`. Implemented by each world's typed `InstancePre`.
pub trait GuestKind: Sized {
    /// The world's name in `flumen:pipeline`.
    const WORLD: &'static str;
    /// The typed bindings of a live instance.
    type Bindings;
    /// Checks a component's exports against the world.
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self>;
    /// The world the component was checked against: `WORLD` or its
    /// columnar form.
    fn world(&self) -> &'static str;
    /// Instantiates from the pre-checked component.
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings>;
    /// Calls the guest's `init`.
    // The generated `call_init` takes `&Vec` (a WIT list of tuples).
    #[allow(clippy::ptr_arg)]
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>>;
}

/// Whether `pre`'s component exports the `flumen:pipeline` interface
/// `interface`, in any version.
fn exports_interface(pre: &wasmtime::component::InstancePre<GuestState>, interface: &str) -> bool {
    let component = pre.component();
    let prefix = format!("flumen:pipeline/{interface}@");
    component
        .component_type()
        .exports(component.engine())
        .any(|(name, _)| name.starts_with(&prefix))
}

/// An interceptor component, checked against the world it exports: records
/// (`interceptor`) or columns (`columnar-interceptor`).
#[derive(Clone)]
pub enum InterceptorPre {
    /// Takes `list<event>`.
    Records(RecordInterceptorPre<GuestState>),
    /// Takes `columns`.
    Columns(ColumnarInterceptorPre<GuestState>),
}

/// A live interceptor instance, in the form its component exports.
pub enum InterceptorInstance {
    /// Takes `list<event>`.
    Records(Interceptor),
    /// Takes `columns`.
    Columns(ColumnarInterceptor),
}

impl GuestKind for InterceptorPre {
    const WORLD: &'static str = "interceptor";
    type Bindings = InterceptorInstance;
    fn world(&self) -> &'static str {
        match self {
            Self::Records(_) => Self::WORLD,
            Self::Columns(_) => "columnar-interceptor",
        }
    }
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        // A component that exports the columnar interface is checked
        // against it, so that a mistake in it is the error shown.
        if exports_interface(&pre, "columnar-interception") {
            ColumnarInterceptorPre::new(pre).map(Self::Columns)
        } else {
            RecordInterceptorPre::new(pre).map(Self::Records)
        }
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        Ok(match self {
            Self::Records(pre) => InterceptorInstance::Records(pre.instantiate(store)?),
            Self::Columns(pre) => InterceptorInstance::Columns(pre.instantiate(store)?),
        })
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        match b {
            InterceptorInstance::Records(b) => {
                b.flumen_pipeline_interception().call_init(store, config)
            }
            InterceptorInstance::Columns(b) => b
                .flumen_pipeline_columnar_interception()
                .call_init(store, config),
        }
    }
}

/// A sink component, checked against the world it exports: records
/// (`sink`) or columns (`columnar-sink`).
#[derive(Clone)]
pub enum SinkPre {
    /// Takes `list<event>`.
    Records(RecordSinkPre<GuestState>),
    /// Takes `columns`.
    Columns(ColumnarSinkPre<GuestState>),
}

/// A live sink instance, in the form its component exports.
pub enum SinkInstance {
    /// Takes `list<event>`.
    Records(Sink),
    /// Takes `columns`.
    Columns(ColumnarSink),
}

impl GuestKind for SinkPre {
    const WORLD: &'static str = "sink";
    type Bindings = SinkInstance;
    fn world(&self) -> &'static str {
        match self {
            Self::Records(_) => Self::WORLD,
            Self::Columns(_) => "columnar-sink",
        }
    }
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        if exports_interface(&pre, "columnar-delivery") {
            ColumnarSinkPre::new(pre).map(Self::Columns)
        } else {
            RecordSinkPre::new(pre).map(Self::Records)
        }
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        Ok(match self {
            Self::Records(pre) => SinkInstance::Records(pre.instantiate(store)?),
            Self::Columns(pre) => SinkInstance::Columns(pre.instantiate(store)?),
        })
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        match b {
            SinkInstance::Records(b) => b.flumen_pipeline_delivery().call_init(store, config),
            SinkInstance::Columns(b) => b
                .flumen_pipeline_columnar_delivery()
                .call_init(store, config),
        }
    }
}
