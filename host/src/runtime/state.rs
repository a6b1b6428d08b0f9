//! The per-instance store data: the guest's WASI context (its sandbox), its
//! resource limits, and the host side of its imports: `log`, `producer`,
//! `schemas` and `rejection`, each delegating to its grant.

use super::budget::{cut_line, LogBudget};
use super::producer::ProduceGrant;
use super::rejections::Rejections;
use super::sandbox::HttpGrant;
use super::schemas::SchemaGrant;
use super::tag::GuestTag;
use crate::contract::bindings::interceptor::flumen::pipeline::{log, rejection, schemas, types};
use crate::contract::bindings::kafka_sink::flumen::pipeline::producer;
use crate::contract::bindings::Level;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Data held by every guest's `Store`.
pub struct GuestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_grant: HttpGrant,
    pub(crate) produce_grant: ProduceGrant,
    pub(crate) schema_grant: SchemaGrant,
    pub(crate) rejections: Rejections,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) log_budget: Arc<LogBudget>,
    pub(crate) tag: GuestTag,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_grant,
        }
    }
}

impl types::Host for GuestState {}

impl producer::Host for GuestState {
    fn send(
        &mut self,
        records: Vec<producer::Outgoing>,
    ) -> wasmtime::Result<Vec<Result<(), producer::SendError>>> {
        self.produce_grant
            .within_budget(&records)
            .map_err(wasmtime::Error::msg)?;
        Ok(self.produce_grant.send(records))
    }
}

impl schemas::Host for GuestState {
    fn by_id(&mut self, id: u32) -> Result<schemas::Schema, schemas::Error> {
        self.schema_grant
            .lookup(|r, deadline| r.by_id(id, deadline))
    }

    fn by_guid(&mut self, guid: String) -> Result<schemas::Schema, schemas::Error> {
        self.schema_grant
            .lookup(|r, deadline| r.by_guid(&guid, deadline))
    }

    fn by_subject(
        &mut self,
        subject: String,
        version: Option<i32>,
    ) -> Result<schemas::Schema, schemas::Error> {
        self.schema_grant
            .lookup(|r, deadline| r.by_subject(&subject, version, deadline))
    }

    fn register(
        &mut self,
        subject: String,
        format: schemas::Format,
        text: String,
    ) -> Result<u32, schemas::Error> {
        let format = match format {
            schemas::Format::Avro => crate::registry::Format::Avro,
            schemas::Format::Protobuf => crate::registry::Format::Protobuf,
            schemas::Format::Json => crate::registry::Format::Json,
        };
        self.schema_grant
            .register(|r, deadline| r.register(&subject, format, &text, deadline))
    }
}

impl rejection::Host for GuestState {
    fn reject(&mut self, event: u32, reason: String) {
        let reason = cut_line(&reason).into_owned();
        self.rejections.reject(event, reason);
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        let t = &self.tag;
        if !self.log_budget.admit(t, message.len()) {
            return;
        }
        let message = cut_line(&message);
        let (topic, partition) = t.topic_partition();
        // tracing needs the level at compile time, hence one arm per level.
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "flumen::guest", component = %t.component,
                    pipeline = %t.pipeline, topic, partition, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error => emit!(error),
        }
    }
}
