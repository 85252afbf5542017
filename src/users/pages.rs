use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{
    AccountFields, EmailChangeState, InvitationState, Role, User, UserError, UserFields,
    email_change_state, invitation_state, redeem_invitation, send_invitation,
};
use crate::{
    audit::Actor,
    auth::CurrentUser,
    domain::{Email, NewPassword, PersonName},
    error::{AppError, AppResult},
    state::AppState,
    web::{Layout, flash, see_other},
};

#[derive(Template, WebTemplate)]
#[template(path = "users/list.html")]
pub struct ListPage {
    layout: Layout,
    users: Vec<User>,
}

pub async fn list(State(state): State<AppState>, layout: Layout) -> AppResult<ListPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(ListPage {
        layout,
        users: super::list(&mut conn).await?,
    })
}

/// The form as typed, kept when it is shown again with errors.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    chat_operator: Option<String>,
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

#[derive(Default)]
pub struct FieldErrors {
    email: Option<&'static str>,
    name: Option<&'static str>,
    role: Option<&'static str>,
    form: Option<&'static str>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.email.is_some() || self.name.is_some() || self.role.is_some() || self.form.is_some()
    }
}

impl UserForm {
    fn from_user(user: &User) -> Self {
        let flag = |on: bool| on.then(|| "on".to_string());
        Self {
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role.as_str().into(),
            chat_operator: flag(user.chat_operator),
            mailbox: flag(user.mailbox),
            disabled: flag(user.disabled_at.is_some()),
        }
    }

    fn parse(&self) -> Result<UserFields, FieldErrors> {
        let email = Email::parse(&self.email);
        let name = PersonName::parse(&self.name);
        let role = Role::parse(&self.role).ok_or("field.role.invalid");
        match (email, name, role) {
            (Ok(email), Ok(name), Ok(role)) => Ok(UserFields {
                email,
                name,
                role,
                chat_operator: self.chat_operator.is_some(),
                mailbox: self.mailbox.is_some(),
            }),
            (email, name, role) => Err(FieldErrors {
                email: email.err(),
                name: name.err(),
                role: role.err(),
                form: None,
            }),
        }
    }

    fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }

    fn account_fields(&self, fields: &UserFields) -> AccountFields {
        AccountFields {
            name: fields.name.clone(),
            role: fields.role,
            chat_operator: fields.chat_operator,
            mailbox: fields.mailbox,
            disabled: self.is_disabled(),
        }
    }
}

/// The roles the administrator may give: a CEO account is made on the server
/// (`gdpr-register user add --role ceo`), so that nobody else can make themselves one.
const ROLES_GIVEN_BY_ADMIN: [Role; 2] = [Role::Admin, Role::Employee];

/// A CEO's account is managed by the CEO (under *My account*) or on the server: the
/// administrator can neither change, re-invite nor disable it, nor make anyone a CEO.
fn refuse_ceo(user: Option<&User>, fields: Option<&UserFields>) -> AppResult<()> {
    if user.is_some_and(|u| u.role == Role::Ceo) {
        return Err(AppError::Forbidden("users.ceo_protected"));
    }
    if fields.is_some_and(|f| f.role == Role::Ceo) {
        return Err(AppError::Forbidden("users.ceo_only_on_server"));
    }
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "users/form.html")]
pub struct FormPage {
    layout: Layout,
    /// `None` for a new user.
    user: Option<User>,
    form: UserForm,
    errors: FieldErrors,
    roles: [Role; 2],
}

impl FormPage {
    fn new(layout: Layout, user: Option<User>, form: UserForm, errors: FieldErrors) -> Self {
        Self {
            layout,
            user,
            form,
            errors,
            roles: ROLES_GIVEN_BY_ADMIN,
        }
    }

    fn invalid(self) -> Response {
        (StatusCode::UNPROCESSABLE_ENTITY, self).into_response()
    }
}

pub async fn new_form(layout: Layout) -> FormPage {
    let form = UserForm {
        role: Role::Employee.as_str().into(),
        ..UserForm::default()
    };
    FormPage::new(layout, None, form, FieldErrors::default())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Form(form): Form<UserForm>,
) -> AppResult<Response> {
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::new(layout, None, form, errors).invalid()),
    };
    refuse_ceo(None, Some(&fields))?;
    let actor = Actor::User(admin.id);
    let mut tx = state.pool.begin().await?;
    let id = match super::create(&mut tx, &fields, &actor).await {
        Ok(id) => id,
        Err(UserError::EmailTaken) => {
            let errors = FieldErrors {
                email: Some("field.email.taken"),
                ..FieldErrors::default()
            };
            return Ok(FormPage::new(layout, None, form, errors).invalid());
        }
        Err(e) => return Err(e.into()),
    };
    let user = super::find(&mut tx, id).await?.ok_or(AppError::NotFound)?;
    send_invitation(&mut tx, &state.config, &user, layout.lang(), &actor).await?;
    tx.commit().await?;
    flash::success(&session, "users.created").await?;
    Ok(see_other("/users").into_response())
}

async fn load(state: &AppState, id: &str) -> AppResult<User> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    super::find(&mut conn, id).await?.ok_or(AppError::NotFound)
}

pub async fn edit_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<FormPage> {
    let user = load(&state, &id).await?;
    refuse_ceo(Some(&user), None)?;
    let form = UserForm::from_user(&user);
    Ok(FormPage::new(
        layout,
        Some(user),
        form,
        FieldErrors::default(),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> AppResult<Response> {
    let user = load(&state, &id).await?;
    refuse_ceo(Some(&user), None)?;
    let fields = match form.parse() {
        Ok(fields) => fields,
        Err(errors) => return Ok(FormPage::new(layout, Some(user), form, errors).invalid()),
    };
    refuse_ceo(None, Some(&fields))?;
    // Administrators cannot lock themselves out.
    if user.id == admin.id && (fields.role != Role::Admin || form.is_disabled()) {
        let errors = FieldErrors {
            form: Some("users.cannot_demote_self"),
            ..FieldErrors::default()
        };
        return Ok(FormPage::new(layout, Some(user), form, errors).invalid());
    }
    let actor = Actor::User(admin.id);
    let new_email = (fields.email.as_str() != user.email).then_some(&fields.email);
    let mut tx = state.pool.begin().await?;
    super::update(&mut tx, &user, &form.account_fields(&fields), &actor).await?;
    let mut message = "users.saved";
    let written = match new_email {
        None => Ok(()),
        // Not signed up yet: the invitation goes to the corrected address.
        Some(email) if !user.has_signed_up() => {
            let corrected = super::set_email(&mut tx, user.id, email, &actor).await;
            match (corrected, form.is_disabled()) {
                (Ok(()), false) => {
                    let updated = super::find(&mut tx, user.id)
                        .await?
                        .ok_or(AppError::NotFound)?;
                    send_invitation(&mut tx, &state.config, &updated, layout.lang(), &actor)
                        .await?;
                    Ok(())
                }
                (other, _) => other,
            }
        }
        // The owner confirms the new address through a link mailed to it.
        Some(email) => {
            message = "users.email_change_sent";
            super::request_email_change(&mut tx, &state.config, &user, email, layout.lang(), &actor)
                .await
        }
    };
    match written {
        Ok(()) => {}
        Err(UserError::EmailTaken) => {
            let errors = FieldErrors {
                email: Some("field.email.taken"),
                ..FieldErrors::default()
            };
            return Ok(FormPage::new(layout, Some(user), form, errors).invalid());
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    flash::success(&session, message).await?;
    Ok(see_other("/users").into_response())
}

pub async fn reinvite(
    State(state): State<AppState>,
    session: Session,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let user = load(&state, &id).await?;
    refuse_ceo(Some(&user), None)?;
    if !user.is_active() {
        return Err(AppError::BadRequest("users.disabled_cannot_be_invited"));
    }
    let mut tx = state.pool.begin().await?;
    send_invitation(
        &mut tx,
        &state.config,
        &user,
        layout.lang(),
        &Actor::User(admin.id),
    )
    .await?;
    tx.commit().await?;
    flash::success(&session, "users.invited").await?;
    Ok(see_other(&format!("/users/{}", user.id)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "users/invitation.html")]
pub struct InvitationPage {
    layout: Layout,
    name: String,
    error: Option<&'static str>,
}

async fn valid_invitation(state: &AppState, token: &str) -> AppResult<User> {
    let mut conn = state.pool.acquire().await?;
    match invitation_state(&mut conn, token).await? {
        InvitationState::Valid(user) => Ok(user),
        InvitationState::Used => Err(AppError::Gone("invitation.used")),
        InvitationState::Expired => Err(AppError::Gone("invitation.expired")),
        InvitationState::Unknown => Err(AppError::NotFound),
    }
}

/// Opening the link only shows the form: mail scanners open links too.
pub async fn invitation_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<InvitationPage> {
    let user = valid_invitation(&state, &token).await?;
    Ok(InvitationPage {
        layout,
        name: user.name,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    password: String,
    repeat: String,
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    session: Session,
    layout: Layout,
    Path(token): Path<String>,
    Form(form): Form<SetPasswordForm>,
) -> AppResult<Response> {
    let user = valid_invitation(&state, &token).await?;
    let refuse = |error| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            InvitationPage {
                layout,
                name: user.name.clone(),
                error: Some(error),
            },
        )
            .into_response()
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(p) => p,
        Err(reason) => return Ok(refuse(reason)),
    };
    if form.password != form.repeat {
        return Ok(refuse("field.password.mismatch"));
    }
    let hash = state.passwords.hash(password.expose()).await?;
    let mut tx = state.pool.begin().await?;
    if redeem_invitation(&mut tx, &token, &hash).await?.is_none() {
        return Err(AppError::Gone("invitation.used"));
    }
    tx.commit().await?;
    flash::success(&session, "invitation.password_set").await?;
    Ok(see_other("/login").into_response())
}

#[derive(Deserialize)]
pub struct OwnEmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A staff member's own new address, confirmed with the password; the link goes to the
/// new address. Errors come back as a flash on the account page.
pub async fn request_own_email_change(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    layout: Layout,
    Form(form): Form<OwnEmailForm>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let stored = super::find(&mut conn, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let email = match Email::parse(&form.email) {
        Ok(email) if email.as_str() != stored.email => email,
        Ok(_) => return back_to_account(&session, "account.email.unchanged").await,
        Err(reason) => return back_to_account(&session, reason).await,
    };
    if !state
        .passwords
        .verify(stored.password_hash.as_deref(), &form.password)
        .await
    {
        return back_to_account(&session, "account.password.wrong_current").await;
    }
    let mut tx = state.pool.begin().await?;
    let requested = super::request_email_change(
        &mut tx,
        &state.config,
        &stored,
        &email,
        layout.lang(),
        &Actor::User(user.id),
    )
    .await;
    match requested {
        Ok(()) => {}
        Err(UserError::EmailTaken) => {
            return back_to_account(&session, "field.email.taken").await;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    flash::success(&session, "account.email.sent").await?;
    Ok(see_other("/account").into_response())
}

async fn back_to_account(session: &Session, message: &'static str) -> AppResult<Response> {
    flash::error(session, message).await?;
    Ok(see_other("/account").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "users/email_change.html")]
pub struct EmailChangePage {
    layout: Layout,
    new_email: String,
}

async fn valid_email_change(state: &AppState, token: &str, user: &CurrentUser) -> AppResult<Email> {
    let mut conn = state.pool.acquire().await?;
    match email_change_state(&mut conn, token, user.id).await? {
        EmailChangeState::Valid { new_email, .. } => Ok(new_email),
        EmailChangeState::Used => Err(AppError::Gone("account.email.link_used")),
        EmailChangeState::Expired => Err(AppError::Gone("account.email.link_expired")),
        EmailChangeState::Unknown => Err(AppError::Missing("account.email.link_unknown")),
    }
}

/// Opening the link only shows a button: mail scanners open links too.
pub async fn email_change_form(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<EmailChangePage> {
    let new_email = valid_email_change(&state, &token, &user).await?;
    Ok(EmailChangePage {
        layout,
        new_email: new_email.as_str().to_string(),
    })
}

pub async fn confirm_email_change(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Path(token): Path<String>,
) -> AppResult<Response> {
    valid_email_change(&state, &token, &user).await?;
    let mut tx = state.pool.begin().await?;
    match super::confirm_email_change(&mut tx, &state.config, &token, user.id).await {
        Ok(true) => {}
        Ok(false) => return Err(AppError::Gone("account.email.link_used")),
        Err(UserError::EmailTaken) => {
            return back_to_account(&session, "field.email.taken").await;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    flash::success(&session, "account.email.changed").await?;
    Ok(see_other("/account").into_response())
}
