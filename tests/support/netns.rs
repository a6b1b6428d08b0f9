//! Networks that fail as real ones do: processes in network namespaces of
//! their own, joined through a hub namespace by veth pairs, and links cut
//! by blackhole rules in the hub, so that packets vanish and nothing is
//! refused (a
//! closed port or a killed process answers at once; a network that goes
//! silent does not). This kernel has no `netem` qdisc, so a slow link is
//! not made here.
//!
//! Every address lives in a namespace the test made (10.99.K.0/24 between
//! the hub and host K), never on the machine's own interfaces, so tests in
//! parallel and the machine's network do not meet. Needs root and
//! iproute2's `ip`, as CI has.
//!
//! ```text
//!            hub (forwards)
//!           /      |      \
//!    broker      flumen     test (the test's own Kafka clients)
//!   10.99.1.2   10.99.2.2   10.99.3.2
//! ```

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A hub namespace and the hosts joined to it; removed on drop.
pub struct Net {
    prefix: String,
    hub: String,
    hosts: Vec<String>,
}

/// One namespace joined to a [`Net`]'s hub.
#[derive(Clone, Debug)]
pub struct NetHost {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// Its address, reachable from every other host of the net.
    pub ip: String,
}

/// Runs `ip args…`, panicking with its output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run ip: {e} (network tests need iproute2)"));
    assert!(
        out.status.success(),
        "ip {}: {} (network tests need root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Net {
    /// A new hub, named after this process and a counter so that tests in
    /// parallel do not collide.
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("fl{}x{n}", std::process::id());
        let hub = format!("{prefix}h");
        ip(&["netns", "add", &hub]);
        ip(&["-n", &hub, "link", "set", "lo", "up"]);
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &hub,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .status()
            .expect("sysctl");
        assert!(ok.success(), "cannot enable forwarding in {hub}");
        Self {
            prefix,
            hub,
            hosts: Vec::new(),
        }
    }

    /// A new namespace joined to the hub, with a default route through it.
    pub fn host(&mut self) -> NetHost {
        let k = self.hosts.len() + 1;
        assert!(k < 250, "too many hosts");
        let ns = format!("{}n{k}", self.prefix);
        // veth names are at most 15 bytes: the namespace names them apart.
        let (outer, inner) = ("vhub", "veth");
        ip(&["netns", "add", &ns]);
        self.hosts.push(ns.clone());
        ip(&[
            "-n", &ns, "link", "add", inner, "type", "veth", "peer", "name", outer,
        ]);
        ip(&["-n", &ns, "link", "set", outer, "name", &format!("h{k}")]);
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            &format!("h{k}"),
            "netns",
            &self.hub,
        ]);
        let (hub_ip, host_ip) = (format!("10.99.{k}.1"), format!("10.99.{k}.2"));
        ip(&[
            "-n",
            &self.hub,
            "addr",
            "add",
            &format!("{hub_ip}/24"),
            "dev",
            &format!("h{k}"),
        ]);
        ip(&["-n", &self.hub, "link", "set", &format!("h{k}"), "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            inner,
        ]);
        ip(&["-n", &ns, "link", "set", inner, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", &hub_ip]);
        NetHost { ns, ip: host_ip }
    }

    /// Cuts `a` and `b` apart: the hub drops what it would forward between
    /// them, both ways, so their packets vanish on the way and nothing
    /// answers (a blackhole route on a host itself would fail its
    /// `connect` at once, which a real network does not). Their links to
    /// other hosts stay.
    pub fn cut(&self, a: &NetHost, b: &NetHost) {
        self.rules("add", a, b);
    }

    /// Undoes [`Self::cut`].
    pub fn heal(&self, a: &NetHost, b: &NetHost) {
        self.rules("del", a, b);
    }

    /// Adds or deletes the hub's two blackhole rules between `a` and `b`.
    fn rules(&self, verb: &str, a: &NetHost, b: &NetHost) {
        for (from, to) in [(a, b), (b, a)] {
            let rule = [
                "-n", &self.hub, "rule", verb, "from", &from.ip, "to", &to.ip,
            ];
            ip(&[&rule[..], &["blackhole"]].concat());
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends, and the peers with
        // them. Processes still in it keep it alive until they exit.
        for ns in self.hosts.iter().chain([&self.hub]) {
            let _ = Command::new("ip")
                .args(["netns", "delete", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl NetHost {
    /// `program` to run inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Runs `f` on a thread of its own that has entered this namespace:
    /// sockets it opens, and threads it starts (an rdkafka client's), are
    /// in the namespace. Panics in `f` are passed on.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns);
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a namespace file this process opened, for
            // the calling thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}
