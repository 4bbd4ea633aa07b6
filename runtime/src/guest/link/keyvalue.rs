//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) over the buckets the container was
//! granted (`capability/keyvalue`). wasmtime-wasi-keyvalue has one in-memory backend that
//! loses writes when a bucket is closed and no way to add others, so these bindings are ours,
//! generated from the vendored WIT with async imports: a Redis round trip suspends the guest's
//! instance, not a thread.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::capability::Capabilities;
use crate::capability::keyvalue::{Found, KeyValueStore, KvError};
use crate::guest::GuestState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasmpod:host/keyvalue",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store.bucket": crate::guest::link::keyvalue::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: a handle on the store the container's bucket of that name is.
pub struct Bucket(Arc<dyn KeyValueStore>);

pub(crate) struct KeyValueView<'a> {
    capabilities: &'a Capabilities,
    table: &'a mut ResourceTable,
}

struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

fn view(s: &mut GuestState) -> KeyValueView<'_> {
    KeyValueView {
        capabilities: &s.capabilities,
        table: &mut s.table,
    }
}

pub(super) fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    store::add_to_linker::<GuestState, KeyValueData>(linker, view)?;
    atomics::add_to_linker::<GuestState, KeyValueData>(linker, view)?;
    batch::add_to_linker::<GuestState, KeyValueData>(linker, view)
}

impl KeyValueView<'_> {
    fn store(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<Arc<dyn KeyValueStore>> {
        Ok(self.table.get(bucket)?.0.clone())
    }
}

/// What a guest sees of a backend's failure: the interface's error value.
fn to_wit(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchStore => store::Error::NoSuchStore,
        KvError::AccessDenied(why) => {
            tracing::warn!("key-value access denied: {why}");
            store::Error::AccessDenied
        }
        KvError::Other(why) => store::Error::Other(why),
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for KeyValueView<'_> {
    /// Only granted buckets open; any other name is `no-such-store`.
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let Some(store) = self.capabilities.buckets.get(&identifier) else {
            return Ok(Err(store::Error::NoSuchStore));
        };
        Ok(Ok(self.table.push(Bucket(store.clone()))?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let store = self.store(&bucket)?;
        Ok(store.get(&key).await.map_err(to_wit))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.set(&key, value).await.map_err(to_wit))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.delete(&key).await.map_err(to_wit))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let store = self.store(&bucket)?;
        Ok(store.exists(&key).await.map_err(to_wit))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        let store = self.store(&bucket)?;
        Ok(store
            .list_keys(cursor)
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(to_wit))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let store = self.store(&bucket)?;
        Ok(store.increment(&key, delta).await.map_err(to_wit))
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<Found> {
        let store = self.store(&bucket)?;
        Ok(store.get_many(keys).await.map_err(to_wit))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.set_many(key_values).await.map_err(to_wit))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let store = self.store(&bucket)?;
        Ok(store.delete_many(keys).await.map_err(to_wit))
    }
}
