//! Demo data: a realistic register (Nordic and international names, transformer-industry
//! companies) for trying the product out and for benchmarks. Rows go in with COPY, so a
//! million people take about a minute.

use std::fmt::Write as _;

use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::audit::{self, Actor, Event};

const FIRST: &[&str] = &[
    "Åsa",
    "Björn",
    "Sören",
    "Märta",
    "Göran",
    "Ingrid",
    "Kjell",
    "Linnéa",
    "Øystein",
    "Ørjan",
    "Sølvi",
    "Aino",
    "Väinö",
    "Päivi",
    "Jyrki",
    "Helmi",
    "Eino",
    "Sanna",
    "Mikko",
    "Łukasz",
    "Małgorzata",
    "Paweł",
    "Jiří",
    "Zuzana",
    "Jörg",
    "Zoë",
    "Ólafur",
    "Siobhán",
    "Ngozi",
    "Mei",
    "Ahmed",
    "Priya",
    "Carlos",
    "Amélie",
    "Zdeněk",
    "Kateřina",
    "Nikolaj",
    "Ilse",
    "Tomasz",
    "Élodie",
];
const LAST: &[&str] = &[
    "Öberg",
    "Lindström",
    "Ålund",
    "Nyström",
    "Kärkkäinen",
    "Mäkelä",
    "Virtanen",
    "Sørensen",
    "Kowalski",
    "Wiśniewska",
    "Dvořáková",
    "Müller",
    "O'Brien",
    "García",
    "Nakamura",
    "Singh",
    "Björklund",
    "Häkkinen",
    "Løvaas",
    "Strömberg",
    "Jääskeläinen",
    "Nowak",
    "Novák",
    "Schäfer",
    "Lefèvre",
    "Backman",
    "Granqvist",
    "Sjöholm",
    "Østergaard",
    "Żukowski",
];
const PLACES: &[&str] = &[
    "Bothnia",
    "Vaasa",
    "Oulu",
    "Jakobstad",
    "Nordic",
    "Baltic",
    "Kvarken",
    "Umeå",
    "Tampere",
    "Gdańsk",
    "Ostrava",
    "Bergen",
    "Luleå",
    "Kokkola",
    "Seinäjoki",
    "Trondheim",
    "Kraków",
    "Tallinn",
];
const KINDS: &[&str] = &[
    "Transformers",
    "Energy",
    "Kraft",
    "Sähkö",
    "Elnät",
    "Power",
    "Grid",
    "Engineering",
    "Voima",
    "Energia",
];
const FORMS: &[&str] = &["Ab", "Oy", "AS", "AB", "Sp. z o.o.", "GmbH", "Ltd", "a.s."];
const TITLES: &[&str] = &[
    "Inköpschef",
    "Project Manager",
    "Hankintapäällikkö",
    "CTO",
    "Elkraftingenjör",
    "Buyer",
    "Kunnossapitopäällikkö",
    "Site Manager",
    "Technical Director",
    "",
];
const DEPARTMENTS: &[&str] = &[
    "Inköp",
    "Procurement",
    "Kunnossapito",
    "Engineering",
    "",
    "",
];
const LANGUAGES: &[&str] = &["sv", "fi", "en", "en"];

/// Folds a name into something usable in an address.
fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'å' | 'ä' | 'à' | 'á' | 'Å' | 'Ä' => Some('a'),
            'ö' | 'ø' | 'ó' | 'Ö' | 'Ø' | 'Ó' => Some('o'),
            'é' | 'è' | 'ě' | 'ë' | 'É' => Some('e'),
            'ł' | 'Ł' => Some('l'),
            'ż' | 'ź' | 'Ż' => Some('z'),
            'ś' | 'š' => Some('s'),
            'ř' => Some('r'),
            'í' => Some('i'),
            'ü' => Some('u'),
            'ý' => Some('y'),
            'ń' => Some('n'),
            'č' => Some('c'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// CSV-quotes a field.
fn q(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// Adds `people` people at `people / 20` new companies. Returns (companies, people).
pub async fn generate(pool: &PgPool, people: usize) -> anyhow::Result<(usize, usize)> {
    let mut rng = StdRng::seed_from_u64(people as u64);
    let now = OffsetDateTime::now_utc();
    let batch = Uuid::new_v4().simple().to_string()[..6].to_string();
    let company_count = (people / 20).max(1);
    let areas: Vec<Uuid> = sqlx::query_scalar!("SELECT id FROM business_areas")
        .fetch_all(pool)
        .await?;
    let mut tx = pool.begin().await?;
    let mut companies = Vec::with_capacity(company_count);
    let mut csv = String::new();
    for i in 0..company_count {
        let name = format!(
            "{} {} {} {}",
            pick(&mut rng, PLACES),
            pick(&mut rng, KINDS),
            pick(&mut rng, FORMS),
            i + 1
        );
        let domain = format!(
            "{}{}-{batch}.example",
            ascii(&name[..name.find(' ').unwrap_or(0)]),
            i + 1
        );
        let id = Uuid::new_v4();
        let area = areas
            .get(rng.random_range(0..areas.len().max(1)))
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = write!(csv, "{id},");
        q(&mut csv, &name);
        let _ = writeln!(
            csv,
            ",\"Industrivägen {}\",https://www.{domain}/,info@{domain},+358 6 {} {},{area}",
            rng.random_range(1..200),
            rng.random_range(100..999),
            rng.random_range(1000..9999)
        );
        companies.push((id, domain));
    }
    let mut copy = tx
        .copy_in_raw("COPY companies (id, name, address, website, email, phone, business_area_id) FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;

    const CHUNK: usize = 50_000;
    let mut done = 0;
    while done < people {
        let mut csv = String::with_capacity(CHUNK * 300);
        for n in done..(done + CHUNK).min(people) {
            let (company, domain) = &companies[n % company_count];
            let (first, last) = (pick(&mut rng, FIRST), pick(&mut rng, LAST));
            let name = format!("{first} {last}");
            let email = format!("{}.{}.{n}@{domain}", ascii(first), ascii(last));
            let roll = rng.random_range(0..100);
            let (status, created, last_contact) = if roll < 2 {
                let created = now - Duration::minutes(rng.random_range(0..13 * 24 * 60));
                ("quarantine", created, created)
            } else {
                let last_contact = now - Duration::days(rng.random_range(0..(5 * 365 - 2)));
                let created = if roll < 22 {
                    OffsetDateTime::UNIX_EPOCH + Duration::days(rng.random_range(14_610..17_676))
                } else {
                    last_contact - Duration::days(rng.random_range(0..900))
                };
                (
                    if roll < 22 { "legacy" } else { "active" },
                    created.min(last_contact),
                    last_contact,
                )
            };
            let confirmed = if status == "active" {
                created.format(&Rfc3339)?
            } else {
                String::new()
            };
            let _ = write!(csv, "{},{company},", Uuid::new_v4());
            q(&mut csv, &name);
            csv.push(',');
            q(&mut csv, pick(&mut rng, DEPARTMENTS));
            csv.push(',');
            q(&mut csv, pick(&mut rng, TITLES));
            let _ = writeln!(
                csv,
                ",{email},+358 40 {} {},{},{},{status},{},{},{confirmed},{}",
                rng.random_range(100..999),
                rng.random_range(1000..9999),
                pick(&mut rng, LANGUAGES),
                if roll % 3 == 0 { "fair" } else { "import" },
                status == "active" && roll % 4 == 0,
                created.format(&Rfc3339)?,
                last_contact.format(&Rfc3339)?,
            );
        }
        let mut copy = tx
            .copy_in_raw(
                "COPY contacts (id, company_id, name, department, title, email, phone, language, source, status,
                                newsletter, created_at, confirmed_at, last_communication_at)
                 FROM STDIN (FORMAT csv)",
            )
            .await?;
        copy.send(csv.as_bytes()).await?;
        copy.finish().await?;
        done = (done + CHUNK).min(people);
    }
    audit::record(
        &mut tx,
        Event::new(
            &Actor::System("demo-data"),
            "demo.generate",
            "contact",
            None,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((company_count, people))
}

/// One confirmed person with `entries` logged communications and a consent, in the
/// caller's transaction (the extract benchmark rolls it back). Returns their address.
pub async fn person_with_history(
    conn: &mut sqlx::PgConnection,
    entries: u32,
) -> anyhow::Result<crate::domain::Email> {
    let company = Uuid::new_v4();
    let contact = Uuid::new_v4();
    let email = format!("bench-{}@example.invalid", contact.simple());
    sqlx::query!(
        "INSERT INTO companies (id, name, address, website) VALUES ($1, 'Łódzkie Transformatory Sp. z o.o.', 'ul. Piotrkowska 1, Łódź', 'https://example.invalid')",
        company
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO contacts (id, company_id, name, title, email, language, source, status, confirmed_at)
         VALUES ($1, $2, 'Łucja Hořčičková-Kőszegi', 'Chief Engineer', $3, 'en', 'fair', 'active', now())",
        contact,
        company,
        email
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO consents (id, contact_id, purpose, text_version, language, text, method)
         VALUES ($1, $2, 'storage', '2026-11-29', 'en', 'I consent to storage.', 'email_link')",
        Uuid::new_v4(),
        contact
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO communications (id, contact_id, kind, happened_on, note)
         SELECT gen_random_uuid(), $1, (ARRAY['call', 'meeting', 'email', 'fair'])[1 + i % 4],
                current_date - i, 'Offert på 40 MVA transformator, uppföljning nr ' || i || ' (Łódź, Győr, Brno: č, ő, ł)'
         FROM generate_series(1, $2::integer) AS i",
        contact,
        entries as i32
    )
    .execute(&mut *conn)
    .await?;
    crate::domain::Email::parse(&email).map_err(|e| anyhow::anyhow!(e))
}
