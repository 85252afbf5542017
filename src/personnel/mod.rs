//! The personnel register (R-PERS-1 … R-PERS-6): the CEO's alone, behind a second
//! factor. It holds no records yet; its page shows where they will be kept.

use askama::Template;
use askama_web::WebTemplate;

use crate::web::{Access, Layout, Section};

pub fn sections() -> Vec<Section> {
    vec![Section::new(Access::Ceo).get("/personnel", index)]
}

#[derive(Template, WebTemplate)]
#[template(path = "personnel/index.html")]
pub struct IndexPage {
    layout: Layout,
}

async fn index(layout: Layout) -> IndexPage {
    IndexPage { layout }
}
