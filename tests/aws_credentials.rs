//! Without credentials, `--aws` refuses with a message that names `--demo` and `--docker`.

use codex_fleet::fleet::aws::{AwsFleet, AwsOptions};
use codex_fleet::fleet::FleetError;

#[tokio::test]
async fn no_credentials_names_demo_and_docker() {
    let home = tempfile::tempdir().unwrap();
    for v in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
        std::env::remove_var(v);
    }
    std::env::set_var("HOME", home.path());
    std::env::set_var("AWS_CONFIG_FILE", home.path().join("config"));
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.path().join("credentials"));
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let r = AwsFleet::connect(AwsOptions { regions: vec!["us-east-2".into()], ..Default::default() }).await;
    match r {
        Err(FleetError::NoCredentials(m)) => {
            assert!(m.contains("--demo") && m.contains("--docker"), "{m}");
        }
        other => panic!("expected NoCredentials, got {:?}", other.map(|_| ())),
    }
}
