//! Where the driver's decisions and events go in the daemon: syslog (authpriv) and stderr for
//! every decision, the fsynced local audit queue for events jitd decided itself.

use std::sync::Arc;

use jit_proto::api::HostEvent;

use crate::audit_queue::AuditQueue;
use crate::driver::Record;
use crate::syslog::{self, Decision, Severity};

pub struct Recorder {
    pub queue: Arc<AuditQueue>,
}

impl Record for Recorder {
    fn decision(&self, d: &Decision) {
        let line = d.line();
        let severity = match d.result {
            "denied" => Severity::Notice,
            "error" => Severity::Err,
            _ => Severity::Info,
        };
        syslog::authpriv(severity, &line);
        tracing::info!("{line}");
    }

    fn event(&self, ev: HostEvent) {
        self.queue.push(ev);
    }

    fn undelivered_offline(&self, account: &str) -> Vec<HostEvent> {
        self.queue.pending("login.offline", account)
    }

    fn delivered(&self, events: &[HostEvent]) {
        self.queue.acknowledged(events);
    }
}
