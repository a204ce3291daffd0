//! The catalog function against moto's Glue API, and the Athena query path against moto's Athena
//! API, on 127.0.0.1.

use std::time::Duration;
use tributary_aws::Instrumented;
use tributary_core::testing::events::SampleRecord;

use serde_json::json;
use tributary_aws::{AthenaQueries, GlueCatalog, PartitionLocation, S3Store, put_json_if};
use tributary_catalog::CatalogFn;
use tributary_core::Config;
use tributary_core::compaction::PartitionState;
use tributary_core::layout::state_key;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::testing::events::{build_event, event_bytes};
use tributary_ingest::Ingest;
use tributary_tests::{Moto, Role};

const T0: i64 = 1_795_316_400_000;

fn object_created(key: &str) -> serde_json::Value {
    json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
           "detail": {"bucket": {"name": "lake"}, "object": {"key": key, "size": 1}, "reason": "PutObject"}})
}

async fn ingest(ing: &Ingest<S3Store>, p: i32, offset: i64, values: &[&str], hour: i64) -> Vec<serde_json::Value> {
    let recs: Vec<SampleRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (offset + i as i64, T0 + hour * 3_600_000, None, Some(v.as_bytes()), &[][..]))
        .collect();
    let out = ing.handle(&event_bytes(&build_event("aws:kafka", "transaction", p, &recs)), None).await.unwrap();
    out.total.objects.iter().filter(|k| k.ends_with(".parquet")).map(|k| object_created(k)).collect()
}

#[tokio::test]
async fn tables_partitions_and_new_columns_appear_in_glue() {
    let moto = Moto::start();
    moto.bucket("lake").await;
    let store = S3Store::new(moto.s3_as(Role::Catalog), "lake");
    let config = Config { bucket: "lake".into(), ..Default::default() };
    let glue = GlueCatalog::new(moto.glue_as(Role::Catalog), "tributary");
    let ing = Ingest::new(S3Store::new(moto.s3_as(Role::Ingest), "lake"), config.clone()).with_metrics_sink(|_| {});
    let f = CatalogFn::new(store.clone(), glue.clone(), config.clone()).with_metrics_sink(|_| {});

    let mut events = ingest(&ing, 0, 0, &[r#"{"branch":"Paris","currency":"EUR","amount":-5}"#], 0).await;
    events.extend(ingest(&ing, 0, 1, &[r#"{"branch":"Rome","currency":"EUR","amount":7}"#], 1).await);
    let r = f.handle(&events[0]).await.unwrap();
    assert_eq!((r.tables_created, r.partitions_created), (1, 1));
    let r = f.handle(&events[1]).await.unwrap();
    assert_eq!((r.tables_created, r.partitions_created), (0, 1));

    let g = moto.glue_client();
    let t = g.get_table().database_name("tributary").name("transaction").send().await.unwrap().table.unwrap();
    let sd = t.storage_descriptor().unwrap();
    let cols: Vec<(String, String)> =
        sd.columns().iter().map(|c| (c.name().into(), c.r#type().unwrap_or_default().into())).collect();
    assert_eq!(
        cols[..3],
        [("branch".into(), "string".into()), ("currency".into(), "string".into()), ("amount".into(), "bigint".into())]
    );
    assert_eq!(
        sd.serde_info().unwrap().serialization_library(),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    assert_eq!(sd.input_format(), Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"));
    assert_eq!(t.partition_keys().iter().map(|k| k.name()).collect::<Vec<_>>(), ["dt", "hr"]);
    assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));

    let parts = g.get_partitions().database_name("tributary").table_name("transaction").send().await.unwrap();
    let mut locs: Vec<String> =
        parts.partitions().iter().map(|p| p.storage_descriptor().unwrap().location().unwrap().to_string()).collect();
    locs.sort();
    assert_eq!(locs, ["s3://lake/tables/transaction/dt=2026-11-22/hr=03/", "s3://lake/tables/transaction/dt=2026-11-22/hr=04/"]);

    // A new field: the column is appended; the same trigger again, from a cold process, changes nothing.
    let e = ingest(&ing, 1, 0, &[r#"{"branch":"Oslo","currency":"NOK","amount":1,"channel":"web"}"#], 0).await;
    let r = f.handle(&e[0]).await.unwrap();
    assert_eq!((r.tables_updated, r.columns_added), (1, 1));
    let cold = CatalogFn::new(store.clone(), glue.clone(), config.clone()).with_metrics_sink(|_| {});
    let r = cold.handle(&e[0]).await.unwrap();
    assert_eq!((r.tables_created, r.tables_updated, r.partitions_created), (0, 0, 0), "AlreadyExists handled");
    let t = g.get_table().database_name("tributary").name("transaction").send().await.unwrap().table.unwrap();
    let names: Vec<&str> = t.storage_descriptor().unwrap().columns().iter().map(|c| c.name()).collect();
    assert_eq!(names.last(), Some(&"channel"));
    assert_eq!(
        glue.partition_location("transaction", &["2026-11-22".into(), "03".into()]).await.unwrap().as_deref(),
        Some("s3://lake/tables/transaction/dt=2026-11-22/hr=03/")
    );

    // A compaction switched the partition while Glue had it registered elsewhere (its switch found
    // no partition to update): a cold catalog function points Glue where the state says.
    let hr03 = TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) };
    let moved = PartitionState {
        version: 1,
        location: "tables/transaction/_v/dt=2026-11-22/hr=03/v000001-x/".into(),
        ..PartitionState::initial(&config, "transaction", &hr03)
    };
    let setup = S3Store::new(moto.s3(), "lake");
    put_json_if(&setup, &state_key(&config, "transaction", &hr03), &moved, None).await.unwrap().unwrap();
    let cold = CatalogFn::new(store.clone(), glue.clone(), config.clone()).with_metrics_sink(|_| {});
    cold.handle(&e[0]).await.unwrap();
    assert_eq!(
        glue.partition_location("transaction", &hr03.values()).await.unwrap().as_deref(),
        Some("s3://lake/tables/transaction/_v/dt=2026-11-22/hr=03/v000001-x/")
    );
}

#[tokio::test]
async fn athena_queries_run_wait_and_print() {
    let moto = Moto::start();
    moto.moto_api(
        "/moto-api/static/athena/query-results",
        &json!({"region": "us-east-1", "results": [{
            "rows": [
                {"Data": [{"VarCharValue": "branch"}, {"VarCharValue": "currency"}, {"VarCharValue": "total"}]},
                {"Data": [{"VarCharValue": "Paris"}, {"VarCharValue": "EUR"}, {"VarCharValue": "-5"}]},
                {"Data": [{"VarCharValue": "Rome"}, {"VarCharValue": "EUR"}, {}]}
            ],
            "column_info": [
                {"Name": "branch", "Type": "varchar"}, {"Name": "currency", "Type": "varchar"}, {"Name": "total", "Type": "bigint"}
            ]
        }]}),
    );
    let q = AthenaQueries::new(moto.athena());
    let mut polls = 0;
    let r = tributary_local::athena::run(
        &q,
        "SELECT branch, currency, sum(amount) AS total FROM transaction GROUP BY 1, 2",
        "tributary",
        "primary",
        Duration::from_millis(50),
        Duration::from_secs(30),
        |_, _| polls += 1,
    )
    .await
    .unwrap();
    assert!(polls >= 1);
    assert_eq!(r.columns, ["branch", "currency", "total"]);
    assert_eq!(
        r.rows,
        vec![
            vec![Some("Paris".into()), Some("EUR".into()), Some("-5".into())],
            vec![Some("Rome".into()), Some("EUR".into()), None]
        ]
    );
    assert_eq!(tributary_local::athena::csv(&r), "branch,currency,total\nParis,EUR,-5\nRome,EUR,\n");
}
