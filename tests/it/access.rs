//! Who may open what: every route walked over HTTP by every kind of user, each answer
//! stated here, not taken from the permission check it tests.

use gdpr_register::{startup::route_table, users::Role};
use reqwest::{Method, StatusCode};

use crate::{
    customers::{add_company, add_person},
    support::{PASSWORD, TestApp, location, texts},
};

/// What a request must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// The page itself: 200.
    Page,
    /// 303 to the login page, with the way back.
    Login,
    /// 303 to the second factor's enrolment.
    Enrol,
    /// 303 to this path (placeholders filled in).
    To(&'static str),
    /// Any other exact status.
    Status(u16),
}

use Answer::*;

const FORBIDDEN: Answer = Status(403);
const MISSING: Answer = Status(404);
const INVALID: Answer = Status(422);

/// Who asks, in the order of the table's columns.
const WHO: [&str; 7] = [
    "anonymous",
    "employee",
    "employee, chat operator",
    "employee, mailbox",
    "administrator",
    "CEO without a second factor",
    "CEO with a second factor",
];

fn everyone(a: Answer) -> [Answer; 7] {
    [a; 7]
}

fn signed_in(a: Answer) -> [Answer; 7] {
    [Login, a, a, a, a, a, a]
}

fn customer_register(a: Answer) -> [Answer; 7] {
    [Login, a, a, a, a, FORBIDDEN, FORBIDDEN]
}

fn administrator(a: Answer) -> [Answer; 7] {
    [
        Login, FORBIDDEN, FORBIDDEN, FORBIDDEN, a, FORBIDDEN, FORBIDDEN,
    ]
}

/// The chat-operator flag, and the administrator.
fn chat_operator(a: Answer) -> [Answer; 7] {
    [Login, FORBIDDEN, a, FORBIDDEN, a, FORBIDDEN, FORBIDDEN]
}

fn mailbox(a: Answer) -> [Answer; 7] {
    [
        Login, FORBIDDEN, FORBIDDEN, a, FORBIDDEN, FORBIDDEN, FORBIDDEN,
    ]
}

/// The personnel register: to anyone who could not open it, an unknown path (R-PERS-3).
fn ceo(a: Answer) -> [Answer; 7] {
    [MISSING, MISSING, MISSING, MISSING, MISSING, Enrol, a]
}

/// (method, route as registered, path requested, answers by [`WHO`]). Paths name real
/// records: `{company}`, `{person}`, `{user}` (an employee), `{employee}` (in the
/// personnel register), `{mail}` (a mail sent, so
/// with nothing to retry), and links mailed: `{invite}`, `{consent}`, `{refuse}`,
/// `{email_link}` (the employee's own e-mail change). Posts that would use up a link or
/// erase a record name `{unknown_id}` or `{unknown_token}` instead.
fn table() -> Vec<(&'static str, &'static str, &'static str, [Answer; 7])> {
    vec![
        ("GET", "/healthz", "/healthz", everyone(Page)),
        ("GET", "/static/{file}", "/static/app.css", everyone(Page)),
        // Everyone here asks from loopback (see `ops` for another address).
        ("GET", "/metrics", "/metrics", everyone(Page)),
        (
            "GET",
            "/login",
            "/login",
            [Page, To("/"), To("/"), To("/"), To("/"), To("/"), To("/")],
        ),
        ("POST", "/login", "/login", everyone(INVALID)),
        ("GET", "/login/code", "/login/code", everyone(To("/login"))),
        ("POST", "/login/code", "/login/code", everyone(To("/login"))),
        ("POST", "/lang", "/lang", everyone(INVALID)),
        ("GET", "/account", "/account", signed_in(Page)),
        (
            "POST",
            "/account/password",
            "/account/password",
            signed_in(INVALID),
        ),
        (
            "GET",
            "/account/second-factor",
            "/account/second-factor",
            signed_in(Page),
        ),
        (
            "POST",
            "/account/second-factor",
            "/account/second-factor",
            signed_in(INVALID),
        ),
        (
            "POST",
            "/account/second-factor/remove",
            "/account/second-factor/remove",
            [
                Login,
                To("/account/second-factor"),
                To("/account/second-factor"),
                To("/account/second-factor"),
                To("/account/second-factor"),
                To("/account/second-factor"),
                INVALID,
            ],
        ),
        (
            "POST",
            "/account/email",
            "/account/email",
            signed_in(To("/account")),
        ),
        (
            "GET",
            "/account/email/{token}",
            "/account/email/{email_link}",
            [Login, Page, MISSING, MISSING, MISSING, MISSING, MISSING],
        ),
        (
            "POST",
            "/account/email/{token}",
            "/account/email/{unknown_token}",
            signed_in(MISSING),
        ),
        ("GET", "/", "/", signed_in(Page)),
        ("GET", "/users", "/users", administrator(Page)),
        ("GET", "/users/new", "/users/new", administrator(Page)),
        ("POST", "/users", "/users", administrator(INVALID)),
        ("GET", "/users/{id}", "/users/{user}", administrator(Page)),
        (
            "POST",
            "/users/{id}",
            "/users/{user}",
            administrator(INVALID),
        ),
        (
            "POST",
            "/users/{id}/invite",
            "/users/{user}/invite",
            administrator(To("/users/{user}")),
        ),
        ("GET", "/invite/{token}", "/invite/{invite}", everyone(Page)),
        (
            "POST",
            "/invite/{token}",
            "/invite/{invite}",
            everyone(INVALID),
        ),
        ("GET", "/audit", "/audit", administrator(Page)),
        ("GET", "/mail", "/mail", administrator(Page)),
        (
            "POST",
            "/mail/{id}/retry",
            "/mail/{mail}/retry",
            administrator(MISSING),
        ),
        ("GET", "/customers", "/customers", customer_register(Page)),
        (
            "GET",
            "/customers/new",
            "/customers/new",
            customer_register(Page),
        ),
        (
            "POST",
            "/customers",
            "/customers",
            customer_register(INVALID),
        ),
        (
            "GET",
            "/customers/{id}",
            "/customers/{company}",
            customer_register(Page),
        ),
        (
            "GET",
            "/customers/{id}/edit",
            "/customers/{company}/edit",
            customer_register(Page),
        ),
        (
            "POST",
            "/customers/{id}",
            "/customers/{company}",
            customer_register(INVALID),
        ),
        (
            "GET",
            "/customers/{id}/delete",
            "/customers/{company}/delete",
            customer_register(Page),
        ),
        (
            "POST",
            "/customers/{id}/delete",
            "/customers/{company}/delete",
            customer_register(INVALID),
        ),
        (
            "GET",
            "/customers/{id}/people/new",
            "/customers/{company}/people/new",
            customer_register(Page),
        ),
        (
            "POST",
            "/customers/{id}/people",
            "/customers/{company}/people",
            customer_register(INVALID),
        ),
        ("GET", "/people", "/people", customer_register(Page)),
        (
            "GET",
            "/people/{id}",
            "/people/{person}",
            customer_register(Page),
        ),
        (
            "GET",
            "/people/{id}/edit",
            "/people/{person}/edit",
            customer_register(Page),
        ),
        (
            "POST",
            "/people/{id}",
            "/people/{person}",
            customer_register(INVALID),
        ),
        (
            "GET",
            "/people/{id}/delete",
            "/people/{person}/delete",
            customer_register(Page),
        ),
        (
            "POST",
            "/people/{id}/delete",
            "/people/{unknown_id}/delete",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/people/{id}/communications",
            "/people/{person}/communications",
            customer_register(INVALID),
        ),
        (
            "POST",
            "/people/{id}/address-confirmation",
            "/people/{unknown_id}/address-confirmation",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/people/{id}/extract",
            "/people/{unknown_id}/extract",
            customer_register(MISSING),
        ),
        ("GET", "/requests", "/requests", customer_register(Page)),
        ("POST", "/requests", "/requests", customer_register(INVALID)),
        (
            "GET",
            "/requests/{id}",
            "/requests/{unknown_id}",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/requests/{id}/extend",
            "/requests/{unknown_id}/extend",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/requests/{id}/close",
            "/requests/{unknown_id}/close",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/requests/{id}/extract",
            "/requests/{unknown_id}/extract",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/requests/{id}/erase",
            "/requests/{unknown_id}/erase",
            customer_register(MISSING),
        ),
        ("GET", "/people/due", "/people/due", administrator(Page)),
        (
            "GET",
            "/people/legacy",
            "/people/legacy",
            administrator(Page),
        ),
        (
            "POST",
            "/people/legacy/inform",
            "/people/legacy/inform",
            administrator(To("/people/legacy")),
        ),
        (
            "GET",
            "/business-areas",
            "/business-areas",
            administrator(Page),
        ),
        (
            "POST",
            "/business-areas",
            "/business-areas",
            administrator(INVALID),
        ),
        ("GET", "/import", "/import", administrator(Page)),
        // Not a file upload.
        ("POST", "/import", "/import", administrator(Status(400))),
        (
            "GET",
            "/consent/{token}",
            "/consent/{consent}",
            everyone(Page),
        ),
        (
            "POST",
            "/consent/{token}",
            "/consent/{unknown_token}",
            everyone(MISSING),
        ),
        ("GET", "/refuse/{token}", "/refuse/{refuse}", everyone(Page)),
        (
            "POST",
            "/refuse/{token}",
            "/refuse/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "GET",
            "/address/{token}",
            "/address/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "POST",
            "/address/{token}",
            "/address/{unknown_token}",
            everyone(MISSING),
        ),
        ("GET", "/privacy", "/privacy", everyone(Page)),
        ("GET", "/cookies", "/cookies", everyone(Page)),
        ("GET", "/record", "/record", administrator(Page)),
        ("GET", "/breaches", "/breaches", administrator(Page)),
        ("POST", "/breaches", "/breaches", administrator(INVALID)),
        (
            "GET",
            "/breaches/{id}",
            "/breaches/{unknown_id}",
            administrator(MISSING),
        ),
        (
            "POST",
            "/breaches/{id}",
            "/breaches/{unknown_id}",
            administrator(MISSING),
        ),
        ("GET", "/my-data", "/my-data", everyone(Page)),
        ("POST", "/my-data", "/my-data", everyone(INVALID)),
        (
            "GET",
            "/my-data/{kind}/{token}",
            "/my-data/rectify/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "POST",
            "/my-data/{kind}/{token}",
            "/my-data/erase/{unknown_token}",
            everyone(MISSING),
        ),
        ("GET", "/contact", "/contact", everyone(Page)),
        ("POST", "/contact", "/contact", everyone(INVALID)),
        ("GET", "/contact/embed", "/contact/embed", everyone(Page)),
        ("GET", "/contact/thanks", "/contact/thanks", everyone(Page)),
        ("GET", "/inbox", "/inbox", mailbox(Page)),
        ("GET", "/inbox/{id}", "/inbox/{message}", mailbox(Page)),
        (
            "POST",
            "/inbox/{id}/handled",
            "/inbox/{message}/handled",
            mailbox(To("/inbox")),
        ),
        (
            "GET",
            "/inbox/{id}/contact",
            "/inbox/{message}/contact",
            mailbox(Page),
        ),
        (
            "POST",
            "/inbox/{id}/delete",
            "/inbox/{unknown_id}/delete",
            mailbox(MISSING),
        ),
        ("GET", "/chat", "/chat", everyone(Page)),
        // Not a WebSocket handshake.
        ("GET", "/chat/ws", "/chat/ws", everyone(Status(400))),
        ("GET", "/chat/console", "/chat/console", chat_operator(Page)),
        (
            "GET",
            "/chat/console/ws",
            "/chat/console/ws",
            chat_operator(Status(400)),
        ),
        ("GET", "/chat/history", "/chat/history", chat_operator(Page)),
        (
            "GET",
            "/chat/history/{id}",
            "/chat/history/{conversation}",
            chat_operator(Page),
        ),
        (
            "POST",
            "/chat/history/{id}/delete",
            "/chat/history/{unknown_id}/delete",
            chat_operator(MISSING),
        ),
        // Newsletters: employees see campaigns, the administrator writes and sends them.
        ("GET", "/campaigns", "/campaigns", customer_register(Page)),
        (
            "GET",
            "/campaigns/new",
            "/campaigns/new",
            administrator(Page),
        ),
        (
            "POST",
            "/campaigns/new",
            "/campaigns/new",
            administrator(INVALID),
        ),
        (
            "GET",
            "/campaigns/{id}",
            "/campaigns/{unknown_id}",
            customer_register(MISSING),
        ),
        (
            "GET",
            "/mail/batches/{id}",
            "/mail/batches/{unknown_id}",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/send",
            "/campaigns/{unknown_id}/send",
            administrator(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/test",
            "/campaigns/{unknown_id}/test",
            administrator(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/pause",
            "/campaigns/{unknown_id}/pause",
            administrator(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/resume",
            "/campaigns/{unknown_id}/resume",
            administrator(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/unschedule",
            "/campaigns/{unknown_id}/unschedule",
            administrator(MISSING),
        ),
        (
            "POST",
            "/campaigns/{id}/cancel",
            "/campaigns/{unknown_id}/cancel",
            administrator(MISSING),
        ),
        (
            "GET",
            "/newsletter/unsubscribed",
            "/newsletter/unsubscribed",
            administrator(Page),
        ),
        (
            "GET",
            "/people/{id}/newsletter",
            "/people/{person}/newsletter",
            customer_register(Page),
        ),
        (
            "POST",
            "/people/{id}/newsletter/phone",
            "/people/{person}/newsletter/phone",
            customer_register(To("/people/{person}")),
        ),
        (
            "POST",
            "/people/{id}/newsletter/unsubscribe",
            "/people/{unknown_id}/newsletter/unsubscribe",
            customer_register(MISSING),
        ),
        (
            "POST",
            "/people/{id}/newsletter/bounce",
            "/people/{person}/newsletter/bounce",
            customer_register(To("/people/{person}")),
        ),
        ("GET", "/subscribe", "/subscribe", everyone(Page)),
        ("POST", "/subscribe", "/subscribe", everyone(INVALID)),
        (
            "GET",
            "/subscribe/{token}",
            "/subscribe/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "POST",
            "/subscribe/{token}",
            "/subscribe/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "GET",
            "/unsubscribe/{token}",
            "/unsubscribe/{unknown_token}",
            everyone(MISSING),
        ),
        (
            "POST",
            "/unsubscribe/{token}",
            "/unsubscribe/{unknown_token}",
            everyone(MISSING),
        ),
        ("GET", "/personnel", "/personnel", ceo(Page)),
        ("GET", "/personnel/code", "/personnel/code", ceo(Page)),
        // No code given.
        (
            "POST",
            "/personnel/code",
            "/personnel/code",
            ceo(Status(401)),
        ),
        ("GET", "/personnel/new", "/personnel/new", ceo(Page)),
        ("POST", "/personnel/new", "/personnel/new", ceo(INVALID)),
        ("GET", "/personnel/{id}", "/personnel/{employee}", ceo(Page)),
        (
            "GET",
            "/personnel/{id}/edit",
            "/personnel/{employee}/edit",
            ceo(Page),
        ),
        (
            "POST",
            "/personnel/{id}",
            "/personnel/{employee}",
            ceo(INVALID),
        ),
        // No field named to reveal.
        (
            "POST",
            "/personnel/{id}/reveal",
            "/personnel/{employee}/reveal",
            ceo(Status(400)),
        ),
        (
            "GET",
            "/personnel/{id}/erase",
            "/personnel/{employee}/erase",
            ceo(Page),
        ),
        (
            "POST",
            "/personnel/{id}/erase",
            "/personnel/{employee}/erase",
            ceo(Page),
        ),
        (
            "POST",
            "/personnel/{id}/extract",
            "/personnel/{unknown_id}/extract",
            ceo(MISSING),
        ),
        ("GET", "/personnel/audit", "/personnel/audit", ceo(Page)),
        (
            "POST",
            "/personnel/payroll",
            "/personnel/payroll",
            ceo(Page),
        ),
        // Last: it ends the session the rows above use.
        (
            "POST",
            "/logout",
            "/logout",
            [
                Login,
                To("/login"),
                To("/login"),
                To("/login"),
                To("/login"),
                To("/login"),
                To("/login"),
            ],
        ),
    ]
}

/// R-CUST-4, R-PERS-3: every route answers every kind of user as the table says; a route
/// missing from the table fails the test, so none is added without deciding who may
/// open it.
#[tokio::test]
async fn every_route_answers_every_kind_of_user_as_the_table_says() {
    let app = TestApp::spawn().await;
    let employee = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let ceo_with_factor = app.signed_in(Role::Ceo).await;
    app.enrol_second_factor(&ceo_with_factor).await;
    let hired = app
        .post_form_as(
            &ceo_with_factor,
            "/personnel/new",
            &[
                ("name", "Märta Sjöholm"),
                ("identity_code", "131052-308T"),
                ("employment_start", "2019-03-01"),
            ],
        )
        .await;
    assert_eq!(hired.status(), StatusCode::SEE_OTHER);
    let employee_record = location(&hired)
        .trim_start_matches("/personnel/")
        .to_string();
    let clients = [
        app.new_browser(),
        employee.clone(),
        app.signed_in_with(Role::Employee, |u| u.chat_operator = true)
            .await,
        app.signed_in_with(Role::Employee, |u| u.mailbox = true)
            .await,
        admin.clone(),
        app.signed_in(Role::Ceo).await,
        ceo_with_factor,
    ];
    // The records the paths name, made as staff make them.
    let company = add_company(&app, &employee, "Jakobstads Elverk").await;
    let person = add_person(
        &app,
        &employee,
        &company,
        "Märta Sjöholm",
        "marta@elverk.test",
        "sv",
    )
    .await;
    let user = app
        .create_user("nils@btb.test", Role::Employee)
        .await
        .to_string();
    let invited = app
        .post_form_as(
            &admin,
            "/users",
            &[
                ("email", "ny@btb.test"),
                ("name", "Nils Ny"),
                ("role", "employee"),
            ],
        )
        .await;
    assert_eq!(invited.status(), StatusCode::SEE_OTHER);
    let own_change = app
        .post_form_as(
            &employee,
            "/account/email",
            &[("email", "new@btb.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&own_change), "/account");
    let consent_mail = app.smtp.wait_for_recipient("marta@elverk.test").await;
    let path = |link: String| link[app.base.len()..].to_string();
    let consent = path(consent_mail.link(&app.url("/consent/")));
    let refuse = path(consent_mail.link(&app.url("/refuse/")));
    let invite = path(
        app.smtp
            .wait_for_recipient("ny@btb.test")
            .await
            .link(&app.url("/invite/")),
    );
    let email_link = path(
        app.smtp
            .wait_for_recipient("new@btb.test")
            .await
            .link(&app.url("/account/email/")),
    );
    let mail: uuid::Uuid = sqlx::query_scalar("SELECT id FROM mail_outbox LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let sent = app
        .post_form(
            "/contact",
            &[("email", "visitor@kunde.test"), ("message", "Hej")],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let message: uuid::Uuid = sqlx::query_scalar("SELECT id FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_visitor, _, conversation) =
        crate::chat::start_chat(&app, serde_json::json!({"text": "Hej"})).await;
    let fill = |template: &str| {
        template
            .replace("{message}", &message.to_string())
            .replace("{conversation}", &conversation.to_string())
            .replace("{company}", &company)
            .replace("{person}", &person)
            .replace("{user}", &user)
            .replace("{employee}", &employee_record)
            .replace("{mail}", &mail.to_string())
            .replace("/invite/{invite}", &invite)
            .replace("/consent/{consent}", &consent)
            .replace("/refuse/{refuse}", &refuse)
            .replace("/account/email/{email_link}", &email_link)
            .replace("{unknown_id}", &uuid::Uuid::new_v4().to_string())
            .replace(
                "{unknown_token}",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )
    };

    let table = table();
    let mut registered: Vec<(String, String)> = route_table()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let mut listed: Vec<(String, String)> = table
        .iter()
        .map(|(m, route, _, _)| (m.to_string(), route.to_string()))
        .collect();
    registered.sort();
    listed.sort();
    assert_eq!(registered, listed, "every route, listed once");

    let mut wrong = Vec::new();
    for (method, _, path, answers) in &table {
        let path = fill(path);
        for ((who, client), expected) in WHO.iter().zip(&clients).zip(answers) {
            let response = if *method == "GET" {
                app.get_as(client, &path).await
            } else {
                assert_eq!(*method, Method::POST.as_str());
                app.post_form_as(client, &path, &[]).await
            };
            let status = response.status();
            let to = location(&response);
            let got = match (status, to.as_str()) {
                (StatusCode::OK, _) => Page,
                (StatusCode::SEE_OTHER, to) if to.starts_with("/login?next=") => Login,
                (StatusCode::SEE_OTHER, "/account/second-factor") if *expected == Enrol => Enrol,
                (StatusCode::SEE_OTHER, to) => match expected {
                    To(template) if fill(template) == to => *expected,
                    _ => Status(303),
                },
                (status, _) => Status(status.as_u16()),
            };
            if got != *expected {
                wrong.push(format!(
                    "{method} {path} as {who}: expected {expected:?}, got {status} {to}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn each_role_sees_only_its_own_navigation() {
    let app = TestApp::spawn().await;
    let nav = |page: String| texts(&page, "header nav a");
    let employee = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let ceo = app.signed_in(Role::Ceo).await;

    let employee_nav = nav(app.get_as(&employee, "/").await.text().await.unwrap());
    let admin_nav = nav(app.get_as(&admin, "/").await.text().await.unwrap());
    let ceo_nav = nav(app.get_as(&ceo, "/").await.text().await.unwrap());
    app.enrol_second_factor(&ceo).await;
    let ceo_nav_with_factor = nav(app.get_as(&ceo, "/").await.text().await.unwrap());

    assert_eq!(
        employee_nav,
        [
            "Översikt",
            "Företag",
            "Personer",
            "Begäranden",
            "Nyhetsbrev",
            "Mitt konto"
        ]
    );
    assert_eq!(
        admin_nav,
        [
            "Översikt",
            "Företag",
            "Personer",
            "Begäranden",
            "Nyhetsbrev",
            "Användare",
            "Händelselogg",
            "Utgående e-post",
            "Incidenter",
            "Chatt",
            "Mitt konto"
        ]
    );
    assert_eq!(ceo_nav, ["Översikt", "Mitt konto"]);
    assert_eq!(ceo_nav_with_factor, ["Översikt", "Personal", "Mitt konto"]);
    let anonymous = app.get("/login").await.text().await.unwrap();
    assert!(nav(anonymous).is_empty());
}

/// The start page shows what the capabilities reach: deletions due only to the
/// register's responsible person.
#[tokio::test]
async fn the_start_page_shows_deletions_due_only_to_the_administrator() {
    let app = TestApp::spawn().await;
    let employee = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let ceo = app.signed_in(Role::Ceo).await;

    let links = |page: String| texts(&page, "ul.stats a");
    let employee_links = links(app.get_as(&employee, "/").await.text().await.unwrap());
    let admin_links = links(app.get_as(&admin, "/").await.text().await.unwrap());
    let ceo_links = links(app.get_as(&ceo, "/").await.text().await.unwrap());

    assert_eq!(employee_links.len(), 1, "{employee_links:?}");
    assert_eq!(admin_links.len(), 2, "{admin_links:?}");
    assert!(ceo_links.is_empty());
}
