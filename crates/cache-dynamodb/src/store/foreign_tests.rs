//! An item under an entry's key that is no entry is deleted as it was read: never an entry
//! another client wrote there between that read and the delete.

use cache_core::CacheStore;
use cache_core::testing::{entry, key};

use super::DynamoStore;
use crate::items::{self, CREATED, Item, KEY};

/// A foreign item (with a creation attribute or without) is deleted while it is still there;
/// an entry written after the read (the read's delete then comes late) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_item_is_deleted_only_while_it_is_still_there() {
    let store = DynamoStore::builder()
        .table(test_support::unique_namespace("foreign"))
        .open_local(&test_support::shared_dynamo().endpoint(), "us-east-1")
        .await
        .expect("connect to DynamoDB Local");
    let k = key(1);
    let without_creation: Item = [(KEY.to_owned(), items::s(k.as_str()))].into();
    let mut with_creation = without_creation.clone();
    with_creation.insert(CREATED.to_owned(), items::s("not a number"));
    for foreign in [without_creation, with_creation] {
        let put_foreign = || {
            store
                .client
                .put_item()
                .table_name(&store.table)
                .set_item(Some(foreign.clone()))
                .send()
        };
        put_foreign().await.expect("put the foreign item");
        store.forget_foreign(&k, &foreign).await.unwrap();
        let left = store
            .client
            .get_item()
            .table_name(&store.table)
            .set_key(Some(DynamoStore::key_attr(k.as_str())))
            .consistent_read(true)
            .send()
            .await
            .expect("get_item");
        assert!(
            left.item.is_none(),
            "{foreign:?}: deleted while still there"
        );

        put_foreign().await.expect("put the foreign item");
        // Another client replaces it with an entry before this read's delete runs.
        let written = entry(1, bytes::Bytes::from_static(b"written since"), None);
        store.put(written.clone()).await.unwrap();
        store.forget_foreign(&k, &foreign).await.unwrap();
        assert_eq!(store.get(&k).await.unwrap(), Some(written), "{foreign:?}");
        store.delete(&k).await.unwrap();
    }
}
