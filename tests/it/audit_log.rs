use std::process::Command;

use gdpr_register::{
    audit::{self, Actor, Event, Verification},
    users::Role,
};

use crate::support::{TestApp, pg};

/// What a superuser could do: switch the append-only triggers off, change, switch back.
async fn tamper(app: &TestApp, statement: &str, id: i64) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(statement)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A few rows, sealed into the chain.
async fn some_history(app: &TestApp) {
    app.create_user("anna@btb.test", Role::Employee).await;
    app.create_user("bo@btb.test", Role::Admin).await;
    app.login_as(&app.client, "anna@btb.test").await;
    audit::seal(&app.pool).await.unwrap();
}

async fn record(conn: &mut sqlx::PgConnection, n: usize) {
    audit::record(
        conn,
        Event::new(
            &Actor::System("test"),
            "test.write",
            "test",
            Some(n.to_string()),
        )
        .with_fields(&["a", "b"]),
    )
    .await
    .unwrap();
}

async fn verify(app: &TestApp, head: Option<&[u8]>) -> Verification {
    let mut conn = app.pool.acquire().await.unwrap();
    audit::verify(&mut conn, head).await.unwrap()
}

/// R-CUST-5: the log of who changed what is kept: the database itself refuses to alter it.
#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate_on_the_audit_log() {
    let app = TestApp::spawn().await;
    some_history(&app).await;

    for statement in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement).execute(&app.pool).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
}

#[tokio::test]
async fn an_intact_chain_verifies_and_counts_its_rows() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    match verify(&app, None).await {
        Verification::Intact {
            rows: sealed,
            unsealed: 0,
            head: Some(head),
        } => {
            assert_eq!(sealed, rows as u64);
            assert_eq!(head.seq, rows);
        }
        other => panic!("{other:?}"),
    }
    assert!(rows >= 5);
}

/// R-CUST-5: a superuser can switch the trigger off; the hash chain still gives the edit away.
#[tokio::test]
async fn an_edit_by_a_superuser_is_found_by_audit_verify() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let target: i64 = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id OFFSET 2 LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    tamper(
        &app,
        "UPDATE audit_log SET actor_id = NULL WHERE id = $1",
        target,
    )
    .await;

    let out = Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", pg::database_url(&app.db))
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("broken at row {target}")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_removed_row_is_found_by_the_row_after_it() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    tamper(&app, "DELETE FROM audit_log WHERE id = $1", ids[1]).await;

    match verify(&app, None).await {
        Verification::Broken { row_id, .. } => assert_eq!(row_id, ids[2]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn concurrent_writers_keep_one_unbroken_chain() {
    let app = TestApp::spawn().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let pool = app.pool.clone();
        tasks.spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            record(&mut tx, i).await;
            tx.commit().await.unwrap();
        });
    }
    while tasks.join_next().await.is_some() {}
    audit::seal(&app.pool).await.unwrap();
    assert!(matches!(
        verify(&app, None).await,
        Verification::Intact {
            rows: 20,
            unsealed: 0,
            ..
        }
    ));
}

/// A long transaction that records an event (an import, a sweep) holds no lock that
/// another writer of the log waits for.
#[tokio::test]
async fn a_writer_with_an_open_transaction_does_not_hold_up_another() {
    let app = TestApp::spawn().await;
    let mut long = app.pool.begin().await.unwrap();
    record(&mut long, 1).await;

    let other = async {
        let mut tx = app.pool.begin().await.unwrap();
        record(&mut tx, 2).await;
        tx.commit().await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), other)
        .await
        .expect("the second writer went through while the first was open");
    long.commit().await.unwrap();
}

/// Rows are chained in the order their transactions made them visible: one that commits
/// after rows written later joins the chain after them, and the chain stays whole.
#[tokio::test]
async fn a_row_committed_late_joins_the_chain_after_those_sealed_before_it() {
    let app = TestApp::spawn().await;
    let mut late = app.pool.begin().await.unwrap();
    record(&mut late, 1).await;
    let mut early = app.pool.begin().await.unwrap();
    record(&mut early, 2).await;
    early.commit().await.unwrap();

    audit::seal(&app.pool).await.unwrap();
    assert!(matches!(
        verify(&app, None).await,
        Verification::Intact {
            rows: 1,
            unsealed: 0,
            ..
        }
    ));
    // (The server's own sealer may chain it first: the outcome is the same.)
    late.commit().await.unwrap();
    audit::seal(&app.pool).await.unwrap();
    assert!(matches!(
        verify(&app, None).await,
        Verification::Intact {
            rows: 2,
            unsealed: 0,
            ..
        }
    ));
    let order: Vec<String> = sqlx::query_scalar("SELECT entity_id FROM audit_log ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        order,
        ["2", "1"],
        "the row written first, committed last, is last"
    );
}

/// Removing the newest rows leaves a shorter chain that is whole in itself; checked
/// against a head hash mailed out earlier, it is found.
#[tokio::test]
async fn removing_the_newest_rows_is_found_against_an_earlier_head() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let Verification::Intact {
        head: Some(head), ..
    } = verify(&app, None).await
    else {
        panic!("an intact chain");
    };
    let newest: i64 = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    tamper(&app, "DELETE FROM audit_log WHERE id = $1", newest).await;

    assert!(matches!(
        verify(&app, None).await,
        Verification::Intact { .. }
    ));
    assert!(matches!(
        verify(&app, Some(&head.hash)).await,
        Verification::HeadMissing { .. }
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .args(["audit", "verify", "--head", &hex::encode(&head.hash)])
        .env("DATABASE_URL", pg::database_url(&app.db))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("do not reach the head"));
}

#[tokio::test]
async fn the_administrator_browses_and_filters_the_audit_log() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let admin = app.signed_in(Role::Admin).await;

    let all = app.get_as(&admin, "/audit").await.text().await.unwrap();
    let logins = app
        .get_as(&admin, "/audit?action=login.")
        .await
        .text()
        .await
        .unwrap();
    let bad_date = app.get_as(&admin, "/audit?from=31.12.2026").await;

    assert!(all.contains("user.create") && all.contains("login.success"));
    assert!(logins.contains("login.success") && !logins.contains("user.create"));
    assert_eq!(bad_date.status(), 200);
    assert!(bad_date.text().await.unwrap().contains("ÅÅÅÅ-MM-DD"));
}

/// Once a day the head of the chain goes to the log and, by mail, to the info address:
/// the hash mailed is one that `audit verify --head` accepts.
#[tokio::test]
async fn the_daily_head_is_logged_and_mailed_to_the_info_address_once_a_day() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let noon = time::OffsetDateTime::now_utc().replace_time(time::macros::time!(12:00));

    app.run_jobs_at(noon).await;
    app.run_jobs_at(noon + time::Duration::hours(1)).await;

    let mail = app.smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.recipients, [app.config.info_address.email.to_string()]);
    let text = mail.text();
    let hash = text
        .split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("the head's hash in the mail")
        .to_string();
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'audit.head'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(logged, 1);
    app.outbox_drained().await;
    assert_eq!(app.smtp.received().len(), 1, "one head a day");
    let hash = hex::decode(hash).unwrap();
    assert!(matches!(
        verify(&app, Some(&hash)).await,
        Verification::Intact { .. }
    ));
}
