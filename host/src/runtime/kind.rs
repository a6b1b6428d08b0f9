//! The two kinds of guest, interceptors and sinks: their world, typed
//! bindings and `init`.

use super::state::GuestState;
use crate::contract::bindings::interceptor::{Interceptor, InterceptorPre as TypedInterceptorPre};
use crate::contract::bindings::sink::{Sink, SinkPre as TypedSinkPre};
use wasmtime::Store;

/// What differs between the two kinds of guest: their world, bindings and
/// `init`. Implemented by each world's checked component.
pub trait GuestKind: Sized {
    /// The world's name in `flumen:pipeline`.
    const WORLD: &'static str;
    /// The typed bindings of a live instance.
    type Bindings;
    /// Checks a component's exports against the world.
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self>;
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

/// An interceptor component, checked against the `interceptor` world.
#[derive(Clone)]
pub struct InterceptorPre(TypedInterceptorPre<GuestState>);

impl GuestKind for InterceptorPre {
    const WORLD: &'static str = "interceptor";
    type Bindings = Interceptor;
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        TypedInterceptorPre::new(pre).map(Self)
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        self.0.instantiate(store)
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        b.flumen_pipeline_interception().call_init(store, config)
    }
}

/// A sink component, checked against the `sink` world.
#[derive(Clone)]
pub struct SinkPre(TypedSinkPre<GuestState>);

impl GuestKind for SinkPre {
    const WORLD: &'static str = "sink";
    type Bindings = Sink;
    fn new(pre: wasmtime::component::InstancePre<GuestState>) -> wasmtime::Result<Self> {
        TypedSinkPre::new(pre).map(Self)
    }
    fn instantiate(&self, store: &mut Store<GuestState>) -> wasmtime::Result<Self::Bindings> {
        self.0.instantiate(store)
    }
    fn init(
        b: &Self::Bindings,
        store: &mut Store<GuestState>,
        config: &Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        b.flumen_pipeline_delivery().call_init(store, config)
    }
}
