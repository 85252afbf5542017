//! Backups: made while the server runs, restored into an empty folder or over a register,
//! verified in a throwaway cluster; erasures made since a backup survive its restore.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
};

use gdpr_register::{
    audit, backup,
    local_pg::{LocalPostgres, Options},
    startup::DATABASE_NAME,
    users::Role,
};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};

use crate::support::{TestApp, pool};

const PEOPLE: &str = "company_name,person_name,email,legacy,last_contacted\n\
    Kraft Ab,Anna Berg,anna@kraft.test,yes,2017-03-01\n\
    Kraft Ab,Bo Ek,bo@kraft.test,yes,2017-04-01\n\
    Volt Oy,Cia Dahl,cia@volt.test,yes,2017-05-01\n";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The command line on the app's database.
async fn run(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = app.cli();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

/// The command line on the embedded cluster of `data_dir`.
async fn run_embedded(data_dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gdpr-register"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SMTP_URL")
        .env("DATA_DIR", data_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

/// A register with people, an account and a sealed audit log, and a backup of it.
async fn register_with_backup() -> (TestApp, PathBuf) {
    let app = TestApp::spawn().await;
    app.import_csv(PEOPLE).await;
    app.create_user("admin@btb.test", Role::Admin).await;
    audit::seal(&app.pool).await.unwrap();
    let file = app.data_dir.path().join("register.backup");
    let out = run(&app, &["backup", "create", file.to_str().unwrap()], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    (app, file)
}

/// An empty data folder the postgres user can enter, holding the register's key.
fn empty_folder_with_key_of(app: &TestApp) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(
        app.data_dir.path().join("app.key"),
        dir.path().join("app.key"),
    )
    .unwrap();
    dir
}

async fn counts(conn: &mut PgConnection) -> std::collections::BTreeMap<String, i64> {
    backup::row_counts(conn).await.unwrap()
}

#[tokio::test]
async fn a_backup_restored_into_an_empty_folder_has_every_row_and_an_intact_audit_log() {
    let app = TestApp::spawn().await;
    app.import_csv(PEOPLE).await;
    app.create_user("admin@btb.test", Role::Admin).await;
    audit::seal(&app.pool).await.unwrap();
    let before = counts(&mut app.pool.acquire().await.unwrap()).await;
    let file = app.data_dir.path().join("register.backup");
    let created = run(&app, &["backup", "create", file.to_str().unwrap()], &[]).await;
    let folder = empty_folder_with_key_of(&app);

    let restored = run_embedded(
        folder.path(),
        &["backup", "restore", file.to_str().unwrap()],
    )
    .await;
    let again = run_embedded(
        folder.path(),
        &["backup", "restore", file.to_str().unwrap()],
    )
    .await;
    let verified = run_embedded(folder.path(), &["audit", "verify"]).await;

    assert!(created.status.success(), "{}", text(&created));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the backup is readable by its owner only"
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(text(&restored).contains("restored the backup"));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("holds a register already"));
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("audit log intact"));
    let pg = LocalPostgres::start(
        folder.path(),
        Options {
            durable: false,
            max_connections: 10,
        },
    )
    .unwrap();
    let mut conn = PgConnection::connect_with(&pg.connect_options(DATABASE_NAME))
        .await
        .unwrap();
    let after = counts(&mut conn).await;
    let people: Vec<String> = sqlx::query_scalar("SELECT email FROM contacts ORDER BY email")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    pg.stop().unwrap();
    for (table, n) in &before {
        // The restore itself is one audit row more.
        let expected = n + i64::from(table == "public.audit_log");
        assert_eq!(after.get(table), Some(&expected), "{table}");
    }
    assert_eq!(
        people,
        ["anna@kraft.test", "bo@kraft.test", "cia@volt.test"]
    );
}

/// R-CUST-10: a person erased after the backup stays erased when it is restored over the
/// register.
#[tokio::test]
async fn a_person_erased_after_the_backup_stays_erased_when_it_is_restored() {
    let (mut app, file) = register_with_backup().await;
    let staff = app.signed_in(Role::Employee).await;
    let id: String = sqlx::query_scalar("SELECT id::text FROM contacts WHERE email = $1")
        .bind("bo@kraft.test")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .post_form_as(&staff, &format!("/people/{id}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let path = file.to_str().unwrap();

    let refused = run(&app, &["backup", "restore", path], &[]).await;
    app.stop_server().await;
    let restored = run(&app, &["backup", "restore", path, "--force"], &[]).await;
    let verified = run(&app, &["audit", "verify"], &[]).await;

    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--force"));
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("erasures applied again: 1"),
        "{}",
        text(&restored)
    );
    assert!(verified.status.success(), "{}", text(&verified));
    let fresh = pool(&app.db).await;
    let people: Vec<String> = sqlx::query_scalar("SELECT email FROM contacts ORDER BY email")
        .fetch_all(&fresh)
        .await
        .unwrap();
    assert_eq!(people, ["anna@kraft.test", "cia@volt.test"]);
    let suppressed: i64 = sqlx::query_scalar("SELECT count(*) FROM suppressed_emails")
        .fetch_one(&fresh)
        .await
        .unwrap();
    assert_eq!(
        suppressed, 1,
        "the erased address stays on the suppression list"
    );
}

/// R-CUST-10: the erasure journal beside the backups keeps a person erased after the backup
/// erased when it is restored into an empty folder, and holds no address.
#[tokio::test]
async fn a_person_erased_after_the_backup_stays_erased_when_it_is_restored_into_an_empty_folder() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_path_buf();
    let app = TestApp::spawn_with(|c| c.backup_dir = Some(dir.clone())).await;
    app.import_csv(
        "company_name,person_name,email,legacy,last_contacted\n\
         Kraft Ab,Anna Berg,anna@kraft.test,yes,2017-03-01\n\
         Kraft Ab,Bo Ek,bo@kraft.test,yes,2017-04-01\n",
    )
    .await;
    let env = [("BACKUP_DIR", dir.to_str().unwrap())];
    let file = dir.join("register.backup");
    let path = file.to_str().unwrap();
    let created = run(&app, &["backup", "create", path], &env).await;
    let staff = app.signed_in(Role::Employee).await;
    let id: String = sqlx::query_scalar("SELECT id::text FROM contacts WHERE email = $1")
        .bind("bo@kraft.test")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .post_form_as(&staff, &format!("/people/{id}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let folder = empty_folder_with_key_of(&app);

    let restored = run_embedded(folder.path(), &["backup", "restore", path]).await;
    let verified = run_embedded(folder.path(), &["audit", "verify"]).await;

    assert!(created.status.success(), "{}", text(&created));
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("erasures applied again: 1"),
        "{}",
        text(&restored)
    );
    assert!(verified.status.success(), "{}", text(&verified));
    let journal = dir.join("erasures.journal");
    let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the journal is readable by its owner only"
    );
    let lines = std::fs::read_to_string(&journal).unwrap();
    assert!(
        !lines.contains('@'),
        "the journal holds no address: {lines}"
    );
    assert_eq!(lines.lines().count(), 1, "{lines}");
    let pg = LocalPostgres::start(
        folder.path(),
        Options {
            durable: false,
            max_connections: 10,
        },
    )
    .unwrap();
    let mut conn = PgConnection::connect_with(&pg.connect_options(DATABASE_NAME))
        .await
        .unwrap();
    let people: Vec<String> = sqlx::query_scalar("SELECT email FROM contacts ORDER BY email")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let suppressed: Vec<String> =
        sqlx::query_scalar("SELECT encode(email_hash, 'hex') FROM suppressed_emails")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    pg.stop().unwrap();
    assert_eq!(people, ["anna@kraft.test"]);
    assert_eq!(suppressed.len(), 1);
    assert!(
        lines.starts_with(&format!("{} ", suppressed[0])),
        "the journal holds the suppression hash: {lines}"
    );
}

#[tokio::test]
async fn a_bad_erasure_journal_line_is_refused_with_its_number_before_anything_is_dropped() {
    let (app, file) = register_with_backup().await;
    let journal = app.data_dir.path().join("other.journal");
    std::fs::write(
        &journal,
        format!(
            "{} 2030-01-01T00:00:00Z\nanna@kraft.test\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();

    let out = run(
        &app,
        &[
            "backup",
            "restore",
            file.to_str().unwrap(),
            "--force",
            "--erasures",
            journal.to_str().unwrap(),
        ],
        &[],
    )
    .await;

    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 2"), "{}", text(&out));
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(people, 3, "the register is left as it was");
}

#[tokio::test]
async fn a_backup_made_under_another_key_is_refused_with_the_reason() {
    let (app, file) = register_with_backup().await;
    let other_key = "ab".repeat(32);

    let out = run(
        &app,
        &["backup", "restore", file.to_str().unwrap(), "--force"],
        &[("APP_KEY", &other_key)],
    )
    .await;

    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("another application key"));
    assert!(text(&out).contains("unreadable"));
    assert!(text(&out).contains("--key-mismatch-ok"));
}

#[tokio::test]
async fn backup_verify_passes_a_whole_backup_and_refuses_a_truncated_or_foreign_file() {
    let (app, file) = register_with_backup().await;
    let bytes = std::fs::read(&file).unwrap();
    let dir = app.data_dir.path();
    let truncated = dir.join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let garbage = dir.join("garbage.backup");
    std::fs::write(&garbage, b"PGDMP not ours").unwrap();
    let missing = dir.join("missing.backup");

    let whole = run(&app, &["backup", "verify", file.to_str().unwrap()], &[]).await;

    assert!(whole.status.success(), "{}", text(&whole));
    assert!(text(&whole).contains("restores"));
    for (bad, says) in [
        (&truncated, "truncated"),
        (&garbage, "not a backup"),
        (&missing, "cannot read"),
    ] {
        let out = run(&app, &["backup", "verify", bad.to_str().unwrap()], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(says), "{says}: {}", text(&out));
        assert!(!text(&out).contains("panicked"));
    }
}

#[tokio::test]
async fn the_daily_job_keeps_the_newest_backups_and_audits_each() {
    let app = TestApp::spawn().await;
    app.import_csv(PEOPLE).await;
    let dir = app.data_dir.path().join("backups");
    let env = [("BACKUP_DIR", dir.to_str().unwrap()), ("BACKUP_KEEP", "2")];

    for at in [
        "2027-01-01T03:00:00Z",
        "2027-01-02T03:00:00Z",
        "2027-01-03T03:00:00Z",
        "2027-01-03T04:00:00Z",
    ] {
        let out = run(&app, &["jobs", "run-once", "--at", at], &env).await;
        assert!(out.status.success(), "{}", text(&out));
    }

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "gdpr-register-20270102T030000Z.backup",
            "gdpr-register-20270103T030000Z.backup"
        ]
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'backup.create'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audited, 3);
}

#[tokio::test]
async fn the_dashboard_warns_the_administrator_until_a_backup_is_made() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let employee = app.signed_in(Role::Employee).await;
    let before = app.get_as(&admin, "/").await.text().await.unwrap();
    let employee_sees = app.get_as(&employee, "/").await.text().await.unwrap();
    let file = app.data_dir.path().join("now.backup");
    let out = run(&app, &["backup", "create", file.to_str().unwrap()], &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let after = app.get_as(&admin, "/").await.text().await.unwrap();

    assert!(before.contains(r#"id="backup-warning""#));
    assert!(!employee_sees.contains(r#"id="backup-warning""#));
    assert!(!after.contains(r#"id="backup-warning""#));
}

/// A restore over a register that fails part-way (here the database refuses pg_restore's
/// first index, after the tables and their rows) puts the register back as it was, and a
/// later restore goes through.
#[tokio::test]
async fn a_restore_that_fails_part_way_leaves_the_register_as_it_was() {
    let (mut app, file) = register_with_backup().await;
    app.import_csv("company_name,person_name,email\nVolt Oy,Dora Eng,dora@volt.test\n")
        .await;
    app.stop_server().await;
    let before = counts(&mut app.pool.acquire().await.unwrap()).await;
    let path = file.to_str().unwrap();
    let mut owner = PgConnection::connect_with(&app.db).await.unwrap();
    for statement in [
        "CREATE SCHEMA faults",
        "CREATE FUNCTION faults.refuse_restored_index() RETURNS event_trigger
             LANGUAGE plpgsql AS $$ BEGIN
                 IF current_setting('application_name') = 'pg_restore' THEN
                     RAISE EXCEPTION 'no index for pg_restore';
                 END IF;
             END $$",
        "CREATE EVENT TRIGGER refuse_restored_index ON ddl_command_start
             WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION faults.refuse_restored_index()",
    ] {
        sqlx::query(statement).execute(&mut owner).await.unwrap();
    }

    let failed = run(&app, &["backup", "restore", path, "--force"], &[]).await;

    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("the database is as it was before"),
        "{}",
        text(&failed)
    );
    let fresh = pool(&app.db).await;
    assert_eq!(counts(&mut fresh.acquire().await.unwrap()).await, before);
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE '%before_restore'",
    )
    .fetch_all(&fresh)
    .await
    .unwrap();
    assert!(schemas.is_empty(), "{schemas:?}");
    fresh.close().await;
    sqlx::query("DROP EVENT TRIGGER refuse_restored_index")
        .execute(&mut owner)
        .await
        .unwrap();

    let restored = run(&app, &["backup", "restore", path, "--force"], &[]).await;
    assert!(restored.status.success(), "{}", text(&restored));
    let fresh = pool(&app.db).await;
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&fresh)
        .await
        .unwrap();
    assert_eq!(
        people, 3,
        "the backup's people, without the one added since"
    );
}
