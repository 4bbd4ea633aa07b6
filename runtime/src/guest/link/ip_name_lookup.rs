//! `wasi:sockets/ip-name-lookup` through the pod's resolver (`guest/dns.rs`), in place of
//! wasmtime-wasi's, which asks getaddrinfo and so the node's resolv.conf and /etc/hosts.
//!
//! wasmtime-wasi has no resolver hook, and the helper that links its p2 interfaces one by one
//! is private. So [`link`] runs after wasmtime-wasi's p2 is linked and redefines this one
//! interface over it (the linker allows shadowing just for that): same name and version, our
//! resource type and functions. `network` and its types stay wasmtime-wasi's, so a guest's
//! `network` handle from `instance-network` is the one checked here.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::runtime::{AbortOnDropJoinHandle, poll_noop};

use crate::capability::outbound::AllowList;
use crate::guest::GuestState;
use crate::guest::context::Reporter;
use crate::guest::dns::{Dns, LookupFailure, spawn_resolve};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasmpod:host/name-lookup",
        imports: { default: trappable },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/ip-name-lookup.resolve-address-stream":
                crate::guest::link::ip_name_lookup::ResolveAddressStream,
        },
    });
}

use bindings::wasi::sockets::ip_name_lookup::{self, Host, HostResolveAddressStream};

/// What a guest's name lookups use.
#[derive(Clone)]
pub(crate) struct NameLookup {
    /// Whether it may use the network at all (only from the pod's network namespace).
    pub(crate) allowed: bool,
    /// The pod's resolver; without one only IP literals "resolve".
    pub(crate) dns: Option<Arc<Dns>>,
    /// With an allow-list, only names a socket rule allows are looked up, and the answers are
    /// remembered for the socket checks.
    pub(crate) outbound: Option<Arc<AllowList>>,
    pub(crate) reporter: Reporter,
}

/// The part of the store a lookup needs.
pub(crate) struct NameLookupView<'a> {
    lookup: &'a NameLookup,
    table: &'a mut ResourceTable,
}

struct NameLookupData;

impl HasData for NameLookupData {
    type Data<'a> = NameLookupView<'a>;
}

pub(super) fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = ip_name_lookup::add_to_linker::<GuestState, NameLookupData>(linker, view);
    linker.allow_shadowing(false);
    linked
}

fn view(s: &mut GuestState) -> NameLookupView<'_> {
    NameLookupView {
        lookup: &s.name_lookup,
        table: &mut s.table,
    }
}

/// One lookup's answer, handed out an address at a time.
pub struct ResolveAddressStream(State);

enum State {
    Pending(AbortOnDropJoinHandle<Result<Vec<IpAddr>, LookupFailure>>),
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl State {
    fn finish(result: Result<Vec<IpAddr>, LookupFailure>) -> Self {
        State::Done(result.map(Vec::into_iter).map_err(error_code))
    }
}

impl Host for NameLookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> wasmtime::Result<Result<Resource<ResolveAddressStream>, ErrorCode>> {
        // The network handle is the capability to resolve; nothing else is needed of it.
        self.table.get(&network)?;
        if !self.lookup.allowed {
            return Ok(Err(error_code(LookupFailure::NotAllowed)));
        }
        if let Some(list) = &self.lookup.outbound
            && !list.allows_lookup(&name)
        {
            let line = format!(
                "name lookup of {name} refused: no tcp, udp or * rule for it in {}",
                crate::settings::ALLOWED_OUTBOUND_HOSTS
            );
            tracing::warn!("{line}");
            self.lookup.reporter.report(&line);
            return Ok(Err(ErrorCode::AccessDenied));
        }
        let state = match spawn_resolve(self.lookup.dns.clone(), name, self.lookup.outbound.clone())
        {
            Ok(task) => State::Pending(task),
            Err(failure) => return Ok(Err(error_code(failure))),
        };
        Ok(Ok(self.table.push(ResolveAddressStream(state))?))
    }
}

impl HostResolveAddressStream for NameLookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Result<Option<IpAddress>, ErrorCode>> {
        let stream = self.table.get_mut(&stream)?;
        if let State::Pending(task) = &mut stream.0 {
            match poll_noop(Pin::new(task)) {
                Some(result) => stream.0 = State::finish(result),
                None => return Ok(Err(ErrorCode::WouldBlock)),
            }
        }
        Ok(match &mut stream.0 {
            State::Done(Ok(addrs)) => Ok(addrs.next().map(IpAddress::from)),
            State::Done(Err(code)) => Err(*code),
            State::Pending(_) => unreachable!("finished above"),
        })
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        // Dropping a pending lookup aborts its task.
        self.table.delete(stream)?;
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {
        if let State::Pending(task) = &mut self.0 {
            self.0 = State::finish(task.await);
        }
    }
}

/// What `wasi:sockets` tells the guest: `name-unresolvable` for a name that does not exist,
/// `temporary-resolver-failure` for timeouts and failing servers (worth a retry),
/// `permanent-resolver-failure` when the guest may not resolve at all.
fn error_code(failure: LookupFailure) -> ErrorCode {
    match failure {
        LookupFailure::InvalidName => ErrorCode::InvalidArgument,
        LookupFailure::NotFound(_) => ErrorCode::NameUnresolvable,
        LookupFailure::Timeout | LookupFailure::Failed(_) => ErrorCode::TemporaryResolverFailure,
        LookupFailure::NotAllowed => ErrorCode::PermanentResolverFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_failures_map_to_wasi_sockets_codes() {
        for (failure, code) in [
            (LookupFailure::InvalidName, ErrorCode::InvalidArgument),
            (
                LookupFailure::NotFound("NXDOMAIN"),
                ErrorCode::NameUnresolvable,
            ),
            (
                LookupFailure::NotFound("NOERROR"),
                ErrorCode::NameUnresolvable,
            ),
            (LookupFailure::Timeout, ErrorCode::TemporaryResolverFailure),
            (
                LookupFailure::Failed("SERVFAIL".into()),
                ErrorCode::TemporaryResolverFailure,
            ),
            (
                LookupFailure::NotAllowed,
                ErrorCode::PermanentResolverFailure,
            ),
        ] {
            assert_eq!(error_code(failure.clone()), code, "{failure:?}");
        }
    }
}
