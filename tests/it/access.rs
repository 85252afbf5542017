use gdpr_register::{
    auth::CurrentUser,
    startup::route_table,
    users::Role,
    web::{Access, access::Decision},
};
use reqwest::{Method, StatusCode};

use crate::support::{TestApp, location};

/// The intended access of every route. A new route fails this test until it is listed
/// here, so nobody adds a page without deciding who may open it.
const EXPECTED: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Anyone),
    ("GET", "/static/{file}", Access::Anyone),
    ("GET", "/login", Access::Anyone),
    ("POST", "/login", Access::Anyone),
    ("POST", "/lang", Access::Anyone),
    ("POST", "/logout", Access::SignedIn),
    ("GET", "/account", Access::SignedIn),
    ("POST", "/account/password", Access::SignedIn),
    ("GET", "/", Access::SignedIn),
    ("GET", "/users", Access::Admin),
    ("GET", "/users/new", Access::Admin),
    ("POST", "/users", Access::Admin),
    ("GET", "/users/{id}", Access::Admin),
    ("POST", "/users/{id}", Access::Admin),
    ("POST", "/users/{id}/invite", Access::Admin),
    ("GET", "/invite/{token}", Access::Anyone),
    ("POST", "/invite/{token}", Access::Anyone),
    ("GET", "/audit", Access::Admin),
    ("GET", "/mail", Access::Admin),
    ("POST", "/mail/{id}/retry", Access::Admin),
    ("GET", "/customers", Access::CustomerRegister),
    ("GET", "/customers/new", Access::CustomerRegister),
    ("POST", "/customers", Access::CustomerRegister),
    ("GET", "/customers/{id}", Access::CustomerRegister),
    ("GET", "/customers/{id}/edit", Access::CustomerRegister),
    ("POST", "/customers/{id}", Access::CustomerRegister),
    ("GET", "/customers/{id}/delete", Access::CustomerRegister),
    ("POST", "/customers/{id}/delete", Access::CustomerRegister),
    (
        "GET",
        "/customers/{id}/people/new",
        Access::CustomerRegister,
    ),
    ("POST", "/customers/{id}/people", Access::CustomerRegister),
    ("GET", "/people", Access::CustomerRegister),
    ("GET", "/people/{id}", Access::CustomerRegister),
    ("GET", "/people/{id}/edit", Access::CustomerRegister),
    ("POST", "/people/{id}", Access::CustomerRegister),
    ("GET", "/people/{id}/delete", Access::CustomerRegister),
    ("POST", "/people/{id}/delete", Access::CustomerRegister),
    (
        "POST",
        "/people/{id}/communications",
        Access::CustomerRegister,
    ),
    (
        "POST",
        "/people/{id}/address-confirmation",
        Access::CustomerRegister,
    ),
    ("GET", "/people/due", Access::Admin),
    ("GET", "/people/legacy", Access::Admin),
    ("POST", "/people/legacy/inform", Access::Admin),
    ("GET", "/business-areas", Access::Admin),
    ("POST", "/business-areas", Access::Admin),
    ("GET", "/import", Access::Admin),
    ("POST", "/import", Access::Admin),
    ("GET", "/consent/{token}", Access::Anyone),
    ("POST", "/consent/{token}", Access::Anyone),
    ("GET", "/refuse/{token}", Access::Anyone),
    ("POST", "/refuse/{token}", Access::Anyone),
    ("GET", "/address/{token}", Access::Anyone),
    ("POST", "/address/{token}", Access::Anyone),
];

#[test]
fn every_route_has_the_access_it_was_meant_to_have() {
    let mut actual: Vec<(String, String, Access)> = route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string(), r.access))
        .collect();
    let mut expected: Vec<(String, String, Access)> = EXPECTED
        .iter()
        .map(|(m, p, a)| (m.to_string(), p.to_string(), *a))
        .collect();
    actual.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    expected.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert_eq!(actual, expected);
}

fn as_user(role: Role) -> CurrentUser {
    CurrentUser {
        id: uuid::Uuid::nil(),
        name: String::new(),
        email: String::new(),
        role,
        chat_operator: false,
        mailbox: false,
        language: None,
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::new_v4().to_string())
        .replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .replace("{file}", "app.css")
}

/// R-CUST-4, R-PERS-3: walks every route with every role and checks the guard's answer: the page (or a form
/// error) for those allowed, the login page for the anonymous, 403 for other roles.
#[tokio::test]
async fn every_route_answers_every_role_as_the_permission_check_says() {
    let app = TestApp::spawn().await;
    let mut roles: Vec<(&str, Option<Role>, reqwest::Client)> =
        vec![("anonymous", None, app.new_browser())];
    for role in [Role::Employee, Role::Admin, Role::Ceo] {
        roles.push((role.as_str(), Some(role), app.signed_in(role).await));
    }
    let mut routes = route_table();
    // Logging out last keeps the sessions for the other routes.
    routes.sort_by_key(|r| r.path == "/logout");
    let mut failures = Vec::new();
    for route in &routes {
        for (name, role, client) in &roles {
            let user = role.map(as_user);
            let expected = route.access.decide(user.as_ref());
            let url = app.url(&concrete(route.path));
            let response = if route.method == Method::GET {
                client.get(&url).send().await.unwrap()
            } else {
                let token = app.csrf_token(client).await;
                client
                    .post(&url)
                    .form(&[("csrf_token", token)])
                    .send()
                    .await
                    .unwrap()
            };
            let status = response.status();
            let to_login =
                status == StatusCode::SEE_OTHER && location(&response).starts_with("/login?next=");
            let ok = match expected {
                Decision::Allowed => {
                    status != StatusCode::FORBIDDEN && !to_login && status.as_u16() < 500
                }
                Decision::NeedsLogin => to_login,
                Decision::Forbidden => status == StatusCode::FORBIDDEN,
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {name}: expected {expected:?}, got {status}",
                    route.method, route.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn each_role_sees_only_its_own_navigation() {
    let app = TestApp::spawn().await;
    let nav = |page: String| crate::support::texts(&page, "header nav a");
    let employee = app.signed_in(Role::Employee).await;
    let admin = app.signed_in(Role::Admin).await;
    let ceo = app.signed_in(Role::Ceo).await;

    let employee_nav = nav(app.get_as(&employee, "/").await.text().await.unwrap());
    let admin_nav = nav(app.get_as(&admin, "/").await.text().await.unwrap());
    let ceo_nav = nav(app.get_as(&ceo, "/").await.text().await.unwrap());

    assert_eq!(
        employee_nav,
        ["Översikt", "Företag", "Personer", "Mitt konto"]
    );
    assert_eq!(
        admin_nav,
        [
            "Översikt",
            "Företag",
            "Personer",
            "Användare",
            "Händelselogg",
            "Utgående e-post",
            "Mitt konto"
        ]
    );
    assert_eq!(ceo_nav, ["Översikt", "Mitt konto"]);
    let anonymous = app.get("/login").await.text().await.unwrap();
    assert!(nav(anonymous).is_empty());
}
