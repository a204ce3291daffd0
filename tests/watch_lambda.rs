//! The watch function against moto's Lambda API on 127.0.0.1: a mapping that is enabled, then
//! disabled by a user, read through the real SDK adapter (its calls recorded for the IAM check).

use tributary_aws::Instrumented;
use tributary_aws::LambdaMappings;
use tributary_tests::{Moto, Role, py_json};
use tributary_watch::{Watch, WatchConfig};

#[tokio::test]
async fn a_disabled_mapping_is_reported_stopped() {
    let moto = Moto::start();
    let made = py_json("esm.py", &[&moto.endpoint, "create"]);
    let uuid = made["uuid"].as_str().expect("a mapping id").to_string();
    let config = WatchConfig { mapping_uuid: uuid.clone(), metrics_namespace: "Tributary/test".into() };
    let watch = Watch::new(LambdaMappings::new(moto.lambda_as(Role::Watch)), config).with_metrics_sink(|_| {});
    let r = watch.handle().await.unwrap();
    assert_eq!((r.state.as_str(), r.stopped), ("Enabled", false), "{r:?}");

    py_json("esm.py", &[&moto.endpoint, "disable", &uuid]);
    let r = watch.handle().await.unwrap();
    assert_eq!((r.state.as_str(), r.stopped), ("Disabled", true), "{r:?}");
    assert!(r.reason.unwrap().contains("disabled"));

    let gone = WatchConfig { mapping_uuid: "00000000-0000-0000-0000-000000000000".into(), metrics_namespace: "T".into() };
    let e = Watch::new(LambdaMappings::new(moto.lambda_as(Role::Watch)), gone).handle().await.unwrap_err();
    assert!(e.to_string().contains("GetEventSourceMapping"), "{e}");
}
