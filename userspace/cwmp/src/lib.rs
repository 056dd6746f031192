//! provd-cwmp: TR-069 (CWMP) for the ACS, sans-IO.
//!
//! * [`xml`]: a bounded XML reader (no DOCTYPE, so no entity bombs; limits on depth, element
//!   count, text and attribute sizes, document size).
//! * [`Envelope`] and [`Rpc`]: every RPC of both sides (TR-069 Annex A), parsed from and
//!   written to SOAP 1.1 envelopes in namespaces `cwmp-1-0` .. `cwmp-1-4`; faults 8000-8005
//!   (ACS) and 9000-9032 (CPE) with `SetParameterValuesFault` detail.
//! * [`Session`]: the ACS side of one CWMP session. Request bodies and the time go in, HTTP
//!   answers (status and body) come out; what the session learns (an Inform, a
//!   TransferComplete, the answer to a queued request) and what it needs (the next request for
//!   this device) go through the [`Driver`] the caller passes in. No sockets, no clock, no
//!   threads: the server, the CPE simulator's checks and the fuzzer run the same code.

pub mod envelope;
pub mod rpc;
pub mod session;
pub mod xml;

pub use envelope::Envelope;
pub use rpc::{
    AllQueuedTransfer, AutonomousTransferComplete, DeviceId, Download, DuOperation, EventStruct,
    Fault, Inform, Kind, OpResult, ParameterAttribute, ParameterInfo, ParameterValue,
    QueuedTransfer, Rpc, ScheduleDownload, SetParameterAttribute, SpvFault, TimeWindow,
    TransferComplete, TransferFault, UNKNOWN_TIME, Upload,
};
pub use session::{ACS_METHODS, Driver, Outcome, Response, Session, SessionState, default_answer};
pub use xml::Limits;

/// A CWMP namespace version: `urn:dslforum-org:cwmp-1-N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u8);

impl Version {
    pub const V1_0: Version = Version(0);
    pub const V1_1: Version = Version(1);
    pub const V1_2: Version = Version(2);

    pub fn namespace(self) -> &'static str {
        match self.0 {
            0 => "urn:dslforum-org:cwmp-1-0",
            1 => "urn:dslforum-org:cwmp-1-1",
            2 => "urn:dslforum-org:cwmp-1-2",
            3 => "urn:dslforum-org:cwmp-1-3",
            _ => "urn:dslforum-org:cwmp-1-4",
        }
    }
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("envelope of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("elements nested deeper than {max}")]
    TooDeep { max: usize },
    #[error("more than {max} elements")]
    TooManyElements { max: usize },
    #[error("text of {len} bytes is over the limit of {max}")]
    TextTooLong { len: usize, max: usize },
    #[error("attribute value of {len} bytes is over the limit of {max}")]
    AttrTooLong { len: usize, max: usize },
    #[error("more than {max} attributes on <{element}>")]
    TooManyAttributes { element: String, max: usize },
    #[error("more than {max} namespace declarations on <{element}>")]
    TooManyNamespaces { element: String, max: usize },
    #[error("more than {max} namespace declarations in scope")]
    TooManyNamespacesInScope { max: usize },
    #[error("the envelope took longer than its time budget")]
    OverBudget,
    #[error("DOCTYPE (and entity definitions) refused")]
    DocType,
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("the root is not a SOAP 1.1 Envelope")]
    NotEnvelope,
    #[error("no Body, or an empty one")]
    NoBody,
    #[error("<{element}> is not in a urn:dslforum-org:cwmp-1-0..4 namespace")]
    WrongNamespace { element: String },
    #[error("header entry <{element}> must be understood and is not")]
    MustUnderstand { element: String },
    #[error("unknown method <{name}>")]
    UnknownMethod { name: String },
    #[error("<{element}> missing in <{parent}>")]
    Missing {
        element: &'static str,
        parent: &'static str,
    },
    #[error("<{element}> has a bad value {value:?}")]
    BadValue {
        element: &'static str,
        value: String,
    },
}

impl Error {
    /// The CWMP fault an ACS answers with.
    pub fn fault_code(&self) -> u32 {
        match self {
            Error::UnknownMethod { .. } => 8000,
            Error::TooLarge { .. }
            | Error::TooManyElements { .. }
            | Error::TooManyAttributes { .. }
            | Error::TooManyNamespaces { .. }
            | Error::TooManyNamespacesInScope { .. }
            | Error::OverBudget => 8004,
            _ => 8003,
        }
    }

    /// A limit on the work one envelope may cost was reached (size, elements, attributes,
    /// namespace declarations, the time budget): the answer is fault 8004, and the shell
    /// counts these apart from malformed input.
    pub fn is_over_limit(&self) -> bool {
        self.fault_code() == 8004
    }

    /// A short stable name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "too_large",
            Error::TooDeep { .. } => "too_deep",
            Error::TooManyElements { .. } => "too_many_elements",
            Error::TextTooLong { .. } => "text_too_long",
            Error::AttrTooLong { .. } => "attr_too_long",
            Error::TooManyAttributes { .. } => "too_many_attributes",
            Error::TooManyNamespaces { .. } => "too_many_namespaces",
            Error::TooManyNamespacesInScope { .. } => "too_many_namespaces_in_scope",
            Error::OverBudget => "over_budget",
            Error::DocType => "doctype",
            Error::Xml(_) => "xml",
            Error::NotEnvelope => "not_envelope",
            Error::NoBody => "no_body",
            Error::WrongNamespace { .. } => "wrong_namespace",
            Error::MustUnderstand { .. } => "must_understand",
            Error::UnknownMethod { .. } => "unknown_method",
            Error::Missing { .. } => "missing",
            Error::BadValue { .. } => "bad_value",
        }
    }
}

/// The fault codes of TR-069 A.5 and their strings.
pub mod fault {
    pub const METHOD_NOT_SUPPORTED: u32 = 8000;
    pub const REQUEST_DENIED: u32 = 8001;
    pub const INTERNAL_ERROR: u32 = 8002;
    pub const INVALID_ARGUMENTS: u32 = 8003;
    pub const RESOURCES_EXCEEDED: u32 = 8004;
    pub const RETRY_REQUEST: u32 = 8005;
    pub const CPE_METHOD_NOT_SUPPORTED: u32 = 9000;
    pub const CPE_REQUEST_DENIED: u32 = 9001;
    pub const CPE_INTERNAL_ERROR: u32 = 9002;
    pub const CPE_INVALID_ARGUMENTS: u32 = 9003;
    pub const CPE_RESOURCES_EXCEEDED: u32 = 9004;
    pub const INVALID_PARAMETER_NAME: u32 = 9005;
    pub const INVALID_PARAMETER_TYPE: u32 = 9006;
    pub const INVALID_PARAMETER_VALUE: u32 = 9007;
    pub const NON_WRITABLE_PARAMETER: u32 = 9008;
    pub const NOTIFICATION_REJECTED: u32 = 9009;
    pub const DOWNLOAD_FAILURE: u32 = 9010;
    pub const UPLOAD_FAILURE: u32 = 9011;
    pub const FILE_SERVER_AUTH_FAILURE: u32 = 9012;
    pub const UNSUPPORTED_PROTOCOL: u32 = 9013;
    pub const MULTICAST_JOIN_FAILURE: u32 = 9014;
    pub const FILE_SERVER_UNREACHABLE: u32 = 9015;
    pub const FILE_ACCESS_FAILURE: u32 = 9016;
    pub const DOWNLOAD_INCOMPLETE: u32 = 9017;
    pub const FILE_CORRUPTED: u32 = 9018;
    pub const FILE_AUTH_FAILURE: u32 = 9019;
}

/// The standard string of a fault code.
pub fn fault_string(code: u32) -> &'static str {
    match code {
        8000 => "Method not supported",
        8001 => "Request denied",
        8002 => "Internal error",
        8003 => "Invalid arguments",
        8004 => "Resources exceeded",
        8005 => "Retry request",
        9000 => "Method not supported",
        9001 => "Request denied",
        9002 => "Internal error",
        9003 => "Invalid arguments",
        9004 => "Resources exceeded",
        9005 => "Invalid parameter name",
        9006 => "Invalid parameter type",
        9007 => "Invalid parameter value",
        9008 => "Attempt to set a non-writable parameter",
        9009 => "Notification request rejected",
        9010 => "Download failure",
        9011 => "Upload failure",
        9012 => "File transfer server authentication failure",
        9013 => "Unsupported protocol for file transfer",
        9014 => "Download failure: unable to join multicast group",
        9015 => "Download failure: unable to contact file server",
        9016 => "Download failure: unable to access file",
        9017 => "Download failure: unable to complete download",
        9018 => "Download failure: file corrupted",
        9019 => "Download failure: file authentication failure",
        9020 => "Download failure: unable to complete download within specified time windows",
        9021 => "Cancelation of file transfer not permitted",
        8800..=8899 | 9800..=9899 => "Vendor defined fault",
        _ => "Fault",
    }
}
