//! A TLS listener in front of a tansu broker, for the connectivity tests:
//! a test CA made with `openssl`, a server certificate for 127.0.0.1 signed
//! by it, a client certificate for mutual TLS, a second CA that signed
//! nothing the server shows (the "wrong CA"), and stunnel terminating TLS
//! on the port tansu advertises.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The certificates and keys of one test, in `dir`.
pub struct TestPki {
    /// The directory holding every file.
    pub dir: PathBuf,
}

impl TestPki {
    /// Makes a CA, a server certificate with `IP:127.0.0.1`, a client
    /// certificate (CN `flumen`), and an unrelated CA.
    pub fn new(dir: &Path) -> Self {
        let pki = Self {
            dir: dir.to_owned(),
        };
        for ca in ["ca", "wrong-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=flumen test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        std::fs::write(dir.join("server.ext"), "subjectAltName = IP:127.0.0.1\n")
            .expect("write server.ext");
        for (name, cn, ext) in [("server", "127.0.0.1", true), ("client", "flumen", false)] {
            pki.openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ]);
            let mut args = vec![
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
            if ext {
                args.extend(["-extfile".into(), "server.ext".into()]);
            }
            pki.openssl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        pki
    }

    /// A file of the PKI, as a string for a config.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts stunnel accepting TLS on `accept` with the test CA's server
/// certificate and passing the plaintext on to `connect`; with
/// `require_client_cert`, only clients with a certificate the test CA
/// signed get through. Returns once it listens.
pub fn start_stunnel(
    pki: &TestPki,
    accept: &str,
    connect: &str,
    require_client_cert: bool,
) -> Child {
    let bin = ["stunnel4", "stunnel"]
        .into_iter()
        .find(|b| Command::new(b).arg("-version").output().is_ok())
        .expect("stunnel missing: scripts/test.sh installs Debian's stunnel4");
    let verify = if require_client_cert {
        format!(
            "verifyChain = yes\nrequireCert = yes\nCAfile = {}\n",
            pki.file("ca.pem")
        )
    } else {
        String::new()
    };
    let name = accept.replace([':', '.'], "-");
    let conf = pki.dir.join(format!("stunnel-{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = 4\n[kafka]\naccept = {accept}\nconnect = {connect}\n\
             cert = {}\nkey = {}\n{verify}",
            pki.file("server.pem"),
            pki.file("server.key")
        ),
    )
    .expect("write stunnel conf");
    let log =
        std::fs::File::create(pki.dir.join(format!("stunnel-{name}.log"))).expect("stunnel log");
    let child = Command::new(bin)
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start stunnel");
    wait_listening(accept);
    child
}

/// tansu behind a stunnel TLS listener; tansu advertises the TLS port, so
/// every connection a client makes goes through TLS.
pub struct TlsBroker {
    tansu: Child,
    stunnel: Child,
    /// `127.0.0.1:port` of the TLS listener.
    pub tls: String,
}

impl TlsBroker {
    /// Starts both; with `require_client_cert`, stunnel refuses a client
    /// without a certificate signed by the test CA (mutual TLS). The test's
    /// own clients ([`client`]) connect with the right CA (and certificate).
    pub fn start(pki: &TestPki, require_client_cert: bool) -> Self {
        let plain = format!("127.0.0.1:{}", free_port());
        let tls = format!("127.0.0.1:{}", free_port());
        let bin = std::env::var_os("FLUMEN_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".tools/tansu/tansu"));
        let tansu = Command::new(bin)
            .args(["broker", "--listener-url", &format!("tcp://{plain}")])
            .args(["--advertised-listener-url", &format!("tcp://{tls}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        wait_listening(&plain);
        let stunnel = start_stunnel(pki, &tls, &plain, require_client_cert);
        let mut options = vec![
            ("security.protocol", "ssl".to_owned()),
            ("ssl.ca.location", pki.file("ca.pem")),
        ];
        if require_client_cert {
            options.push(("ssl.certificate.location", pki.file("client.pem")));
            options.push(("ssl.key.location", pki.file("client.key")));
        }
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        register_security(&tls, &options);
        Self {
            tansu,
            stunnel,
            tls,
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        forget_security(&self.tls);
        for child in [&mut self.stunnel, &mut self.tansu] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
