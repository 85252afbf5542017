//! A real SMTP listener inside the test process: it speaks enough of RFC 5321 for a
//! client to deliver, and keeps every message it receives.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a parsable mail")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The decoded bodies of every part with this content type.
    pub fn part(&self, mime: &str) -> Option<String> {
        fn find(mail: &mailparse::ParsedMail<'_>, mime: &str) -> Option<String> {
            if mail.ctype.mimetype == mime {
                return mail.get_body().ok();
            }
            mail.subparts.iter().find_map(|p| find(p, mime))
        }
        find(&self.parsed(), mime)
    }

    /// Every attachment: its file name, content type and decoded bytes.
    pub fn attachments(&self) -> Vec<(String, String, Vec<u8>)> {
        fn collect(mail: &mailparse::ParsedMail<'_>, out: &mut Vec<(String, String, Vec<u8>)>) {
            let disposition = mail.get_content_disposition();
            if disposition.disposition == mailparse::DispositionType::Attachment {
                out.push((
                    disposition
                        .params
                        .get("filename")
                        .cloned()
                        .unwrap_or_default(),
                    mail.ctype.mimetype.clone(),
                    mail.get_body_raw().expect("a decodable attachment"),
                ));
            }
            for part in &mail.subparts {
                collect(part, out);
            }
        }
        let mut out = Vec::new();
        collect(&self.parsed(), &mut out);
        out
    }

    pub fn text(&self) -> String {
        self.part("text/plain").expect("a text part")
    }

    /// The first link in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let text = self.text();
        let start = text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
        text[start..].split_whitespace().next().unwrap().to_string()
    }
}

/// How a sink behaves besides accepting every mail at once.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Recipients refused with a 550 that names them, as real servers do.
    pub refuse: Vec<String>,
    /// How long it takes over each mail before accepting it.
    pub delay: Duration,
    /// It never answers MAIL FROM: every sender stays mid-conversation.
    pub stall: bool,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    stalled: Arc<Notify>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// What the sessions of one sink share.
#[derive(Clone)]
struct Shared {
    behaviour: Behaviour,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    stalled: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        Self::start_with(addr, Behaviour::default()).await
    }

    pub async fn start_with(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("binding the SMTP sink");
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            behaviour,
            mails: Arc::new(Mutex::new(Vec::new())),
            arrived: Arc::new(Notify::new()),
            stalled: Arc::new(Notify::new()),
        };
        let (mails, arrived, stalled) = (
            shared.mails.clone(),
            shared.arrived.clone(),
            shared.stalled.clone(),
        );
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, shared).await;
                });
            }
        });
        Self {
            addr,
            mails,
            arrived,
            stalled,
            connections,
            task,
        }
    }

    /// Waits until a sender is held mid-conversation by a stalling sink (at most 20 s).
    pub async fn wait_stalled(&self) {
        tokio::time::timeout(Duration::from_secs(20), self.stalled.notified())
            .await
            .expect("no sender reached the stalling sink");
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// A sink that takes `delay` over each mail, as a busy server does.
    pub async fn slow(delay: Duration) -> Self {
        Self::start_with(
            "127.0.0.1:0".parse().unwrap(),
            Behaviour {
                delay,
                ..Behaviour::default()
            },
        )
        .await
    }

    /// Sends the application's mail here.
    pub fn receive_for(&self, config: &mut gdpr_register::config::Config) {
        config.smtp_url = Some(gdpr_register::config::Secret::new(
            self.url().parse().unwrap(),
        ));
    }

    /// How many connections senders have opened to it.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }

    /// What one address has received so far (the info address gets other mail too).
    pub fn received_by(&self, recipient: &str) -> Vec<ReceivedMail> {
        let mut mails = self.received();
        mails.retain(|m| m.recipients.iter().any(|r| r == recipient));
        mails
    }

    /// Waits until at least `count` mails have arrived (at most 20 seconds).
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.arrived.notified();
            let mails = self.received();
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {count} mails, got {}", self.received().len());
            }
        }
    }
}

impl SmtpSink {
    /// Waits for the first mail to `recipient` (at most 20 seconds).
    pub async fn wait_for_recipient(&self, recipient: &str) -> ReceivedMail {
        let mut count = 1;
        loop {
            let mails = self.wait_for(count).await;
            if let Some(mail) = mails.iter().find(|m| m.recipients == [recipient]) {
                return mail.clone();
            }
            count = mails.len() + 1;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, shared: Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: Vec<u8> = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n".to_vec()
        } else if command.starts_with("MAIL FROM") && shared.behaviour.stall {
            shared.stalled.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
            b"250 OK\r\n".to_vec()
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_string();
            if shared.behaviour.refuse.contains(&address) {
                format!("550 5.1.1 <{address}>: Recipient address rejected: User unknown\r\n")
                    .into_bytes()
            } else {
                recipients.push(address);
                b"250 OK\r\n".to_vec()
            }
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut raw = Vec::new();
            loop {
                let mut data = Vec::new();
                if lines.read_until(b'\n', &mut data).await? == 0 {
                    return Ok(());
                }
                if data == b".\r\n" || data == b".\n" {
                    break;
                }
                // Undo dot-stuffing.
                let data = if data.starts_with(b"..") {
                    &data[1..]
                } else {
                    &data[..]
                };
                raw.extend_from_slice(data);
            }
            tokio::time::sleep(shared.behaviour.delay).await;
            shared.mails.lock().unwrap().push(ReceivedMail {
                recipients: std::mem::take(&mut recipients),
                raw,
            });
            shared.arrived.notify_waiters();
            b"250 OK queued\r\n".to_vec()
        } else if command.starts_with("RSET") {
            recipients.clear();
            b"250 OK\r\n".to_vec()
        } else if command.starts_with("NOOP") {
            b"250 OK\r\n".to_vec()
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n".to_vec()
        };
        write.write_all(&reply).await?;
    }
}
