//! Every CWMP RPC of both sides (TR-069 Annex A), as typed values: decoded from the element
//! tree of [`crate::xml`] and encoded back into the body of an envelope.
//!
//! Element order on output follows the BBF schema (`cwmp-1-2.xsd`), because devices and
//! `xmllint` both read it positionally; on input children are found by name, so a device that
//! orders them differently is still understood. Optional elements a device leaves out decode to
//! empty strings or zero, required ones (a parameter's `Name`, an Inform's `DeviceId`) are
//! errors that name the element.

use crate::Error;
use crate::xml::{Node, Ns, escape_into};

/// `DeviceIdStruct`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceId {
    pub manufacturer: String,
    /// Six upper-case hex digits.
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

/// `EventStruct`: `"1 BOOT"`, `"M Download"` with the command key of the call that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventStruct {
    pub code: String,
    pub command_key: String,
}

/// `ParameterValueStruct`. `ty` is the local name of the `xsi:type` (`string`, `unsignedInt`,
/// `boolean` ...); its prefix is dropped on input and written as `xsd:` on output, the prefix
/// every envelope here declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub ty: String,
}

impl ParameterValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>, ty: &str) -> Self {
        ParameterValue {
            name: name.into(),
            value: value.into(),
            ty: ty.to_owned(),
        }
    }
}

/// `ParameterInfoStruct` (GetParameterNamesResponse).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

/// `SetParameterAttributesStruct`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetParameterAttribute {
    pub name: String,
    pub notification_change: bool,
    /// 0 off, 1 passive, 2 active (3..6 in later amendments).
    pub notification: u8,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

/// `ParameterAttributeStruct`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// `TransferCompleteFaultStruct` / `DeploymentUnitFaultStruct`: code 0 is success.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferFault {
    pub code: u32,
    pub string: String,
}

/// The arguments of Download (and, without delay and result URLs, ScheduleDownload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Download {
    pub command_key: String,
    /// `"1 Firmware Upgrade Image"`, `"3 Vendor Configuration File"`, `"X <OUI> <text>"`.
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub delay_seconds: u32,
    pub success_url: String,
    pub failure_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub delay_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub start: u32,
    pub end: u32,
    /// `"1 At Any Time"`, `"2 Immediately"`, `"3 When Idle"`, `"4 Confirmation Needed"`.
    pub mode: String,
    pub user_message: String,
    pub max_retries: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduleDownload {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub windows: Vec<TimeWindow>,
}

/// One ChangeDUState operation (`xsi:type` InstallOpStruct / UpdateOpStruct /
/// UninstallOpStruct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuOperation {
    Install {
        url: String,
        uuid: String,
        username: String,
        password: String,
        execution_env_ref: String,
    },
    Update {
        uuid: String,
        version: String,
        url: String,
        username: String,
        password: String,
    },
    Uninstall {
        uuid: String,
        version: String,
        execution_env_ref: String,
    },
}

/// `OpResultStruct` (and `AutonOpResultStruct` when `operation_performed` is set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpResult {
    pub uuid: String,
    pub deployment_unit_ref: String,
    pub version: String,
    pub current_state: String,
    pub resolved: bool,
    pub execution_unit_ref_list: String,
    pub start_time: String,
    pub complete_time: String,
    pub fault: TransferFault,
    pub operation_performed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuedTransfer {
    pub command_key: String,
    /// 1 not yet started, 2 in progress, 3 completed.
    pub state: u8,
    /// Set in GetAllQueuedTransfersResponse only.
    pub all: Option<AllQueuedTransfer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllQueuedTransfer {
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u32,
    pub target_file_name: String,
}

/// A `SetParameterValuesFault` entry of a 9003 fault.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpvFault {
    pub name: String,
    pub code: u32,
    pub string: String,
}

/// A SOAP fault carrying a CWMP fault.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fault {
    pub code: u32,
    pub string: String,
    pub spv: Vec<SpvFault>,
}

impl Fault {
    pub fn new(code: u32) -> Self {
        Fault {
            code,
            string: crate::fault_string(code).to_owned(),
            spv: Vec::new(),
        }
    }

    /// SOAP `faultcode`: `Client` for argument and request problems, `Server` for the rest.
    pub fn soap_code(&self) -> &'static str {
        match self.code {
            8002 | 8004 | 8005 | 9002 | 9004 | 9010..=9020 => "Server",
            _ => "Client",
        }
    }
}

/// The Inform (A.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inform {
    pub device_id: DeviceId,
    pub events: Vec<EventStruct>,
    pub max_envelopes: u32,
    pub current_time: String,
    pub retry_count: u32,
    pub parameters: Vec<ParameterValue>,
}

impl Inform {
    /// The Inform of a simulated TR-181 device (manufacturer "ProvdSim", software 2.1.0): one
    /// event, and the parameters an ACS files every session (data model, hardware and software
    /// version, provisioning code, parameter key, connection-request URL). What the ACS's seed
    /// endpoint files, the load generator sends and the benchmarks parse.
    pub fn simulated(
        oui: &str,
        product_class: &str,
        serial: &str,
        event: &str,
        connection_request_url: String,
    ) -> Inform {
        Inform {
            device_id: DeviceId {
                manufacturer: "ProvdSim".into(),
                oui: oui.into(),
                product_class: product_class.into(),
                serial_number: serial.into(),
            },
            events: vec![EventStruct {
                code: event.into(),
                command_key: String::new(),
            }],
            max_envelopes: 1,
            current_time: "2026-01-01T00:00:00Z".into(),
            retry_count: 0,
            parameters: vec![
                ParameterValue::new("Device.RootDataModelVersion", "2.12", "string"),
                ParameterValue::new("Device.DeviceInfo.HardwareVersion", "1.0", "string"),
                ParameterValue::new("Device.DeviceInfo.SoftwareVersion", "2.1.0", "string"),
                ParameterValue::new("Device.DeviceInfo.ProvisioningCode", "", "string"),
                ParameterValue::new("Device.ManagementServer.ParameterKey", "", "string"),
                ParameterValue::new(
                    "Device.ManagementServer.ConnectionRequestURL",
                    connection_request_url,
                    "string",
                ),
            ],
        }
    }

    pub fn has_event(&self, code: &str) -> bool {
        self.events.iter().any(|e| e.code == code)
    }

    pub fn parameter(&self, suffix: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name.ends_with(suffix))
            .map(|p| p.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferComplete {
    pub command_key: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AutonomousTransferComplete {
    pub announce_url: String,
    pub transfer_url: String,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

/// The body of an envelope: one RPC request, response or fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rpc {
    // Both sides.
    GetRpcMethods,
    GetRpcMethodsResponse {
        methods: Vec<String>,
    },

    // CPE -> ACS requests (methods of the ACS).
    Inform(Box<Inform>),
    TransferComplete(TransferComplete),
    AutonomousTransferComplete(Box<AutonomousTransferComplete>),
    RequestDownload {
        file_type: String,
        args: Vec<(String, String)>,
    },
    Kicked {
        command: String,
        referer: String,
        arg: String,
        next: String,
    },
    DuStateChangeComplete {
        results: Vec<OpResult>,
        command_key: String,
    },
    AutonomousDuStateChangeComplete {
        results: Vec<OpResult>,
    },

    // ACS -> CPE responses.
    InformResponse {
        max_envelopes: u32,
    },
    TransferCompleteResponse,
    AutonomousTransferCompleteResponse,
    RequestDownloadResponse,
    KickedResponse {
        next_url: String,
    },
    DuStateChangeCompleteResponse,
    AutonomousDuStateChangeCompleteResponse,

    // ACS -> CPE requests (methods of the CPE).
    SetParameterValues {
        parameters: Vec<ParameterValue>,
        parameter_key: String,
    },
    GetParameterValues {
        names: Vec<String>,
    },
    GetParameterNames {
        path: String,
        next_level: bool,
    },
    SetParameterAttributes {
        parameters: Vec<SetParameterAttribute>,
    },
    GetParameterAttributes {
        names: Vec<String>,
    },
    AddObject {
        object_name: String,
        parameter_key: String,
    },
    DeleteObject {
        object_name: String,
        parameter_key: String,
    },
    Reboot {
        command_key: String,
    },
    Download(Box<Download>),
    Upload(Box<Upload>),
    FactoryReset,
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
    GetQueuedTransfers,
    GetAllQueuedTransfers,
    ScheduleDownload(Box<ScheduleDownload>),
    CancelTransfer {
        command_key: String,
    },
    ChangeDuState {
        operations: Vec<DuOperation>,
        command_key: String,
    },

    // CPE -> ACS responses.
    SetParameterValuesResponse {
        status: u8,
    },
    GetParameterValuesResponse {
        parameters: Vec<ParameterValue>,
    },
    GetParameterNamesResponse {
        parameters: Vec<ParameterInfo>,
    },
    SetParameterAttributesResponse,
    GetParameterAttributesResponse {
        parameters: Vec<ParameterAttribute>,
    },
    AddObjectResponse {
        instance_number: u32,
        status: u8,
    },
    DeleteObjectResponse {
        status: u8,
    },
    RebootResponse,
    DownloadResponse {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    UploadResponse {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    FactoryResetResponse,
    ScheduleInformResponse,
    GetQueuedTransfersResponse {
        transfers: Vec<QueuedTransfer>,
    },
    GetAllQueuedTransfersResponse {
        transfers: Vec<QueuedTransfer>,
    },
    ScheduleDownloadResponse,
    CancelTransferResponse,
    ChangeDuStateResponse,

    /// A SOAP fault with a CWMP fault in its detail.
    Fault(Fault),
}

/// Which way a message goes and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request the CPE sends to the ACS.
    CpeRequest,
    /// A request the ACS sends to the CPE.
    AcsRequest,
    /// An answer to a CPE request (sent by the ACS).
    AcsResponse,
    /// An answer to an ACS request (sent by the CPE).
    CpeResponse,
    Fault,
    /// GetRPCMethods and its response exist on both sides.
    Either,
}

impl Rpc {
    /// The element name.
    pub fn method(&self) -> &'static str {
        use Rpc::*;
        match self {
            GetRpcMethods => "GetRPCMethods",
            GetRpcMethodsResponse { .. } => "GetRPCMethodsResponse",
            Inform(_) => "Inform",
            TransferComplete(_) => "TransferComplete",
            AutonomousTransferComplete(_) => "AutonomousTransferComplete",
            RequestDownload { .. } => "RequestDownload",
            Kicked { .. } => "Kicked",
            DuStateChangeComplete { .. } => "DUStateChangeComplete",
            AutonomousDuStateChangeComplete { .. } => "AutonomousDUStateChangeComplete",
            InformResponse { .. } => "InformResponse",
            TransferCompleteResponse => "TransferCompleteResponse",
            AutonomousTransferCompleteResponse => "AutonomousTransferCompleteResponse",
            RequestDownloadResponse => "RequestDownloadResponse",
            KickedResponse { .. } => "KickedResponse",
            DuStateChangeCompleteResponse => "DUStateChangeCompleteResponse",
            AutonomousDuStateChangeCompleteResponse => "AutonomousDUStateChangeCompleteResponse",
            SetParameterValues { .. } => "SetParameterValues",
            GetParameterValues { .. } => "GetParameterValues",
            GetParameterNames { .. } => "GetParameterNames",
            SetParameterAttributes { .. } => "SetParameterAttributes",
            GetParameterAttributes { .. } => "GetParameterAttributes",
            AddObject { .. } => "AddObject",
            DeleteObject { .. } => "DeleteObject",
            Reboot { .. } => "Reboot",
            Download(_) => "Download",
            Upload(_) => "Upload",
            FactoryReset => "FactoryReset",
            ScheduleInform { .. } => "ScheduleInform",
            GetQueuedTransfers => "GetQueuedTransfers",
            GetAllQueuedTransfers => "GetAllQueuedTransfers",
            ScheduleDownload(_) => "ScheduleDownload",
            CancelTransfer { .. } => "CancelTransfer",
            ChangeDuState { .. } => "ChangeDUState",
            SetParameterValuesResponse { .. } => "SetParameterValuesResponse",
            GetParameterValuesResponse { .. } => "GetParameterValuesResponse",
            GetParameterNamesResponse { .. } => "GetParameterNamesResponse",
            SetParameterAttributesResponse => "SetParameterAttributesResponse",
            GetParameterAttributesResponse { .. } => "GetParameterAttributesResponse",
            AddObjectResponse { .. } => "AddObjectResponse",
            DeleteObjectResponse { .. } => "DeleteObjectResponse",
            RebootResponse => "RebootResponse",
            DownloadResponse { .. } => "DownloadResponse",
            UploadResponse { .. } => "UploadResponse",
            FactoryResetResponse => "FactoryResetResponse",
            ScheduleInformResponse => "ScheduleInformResponse",
            GetQueuedTransfersResponse { .. } => "GetQueuedTransfersResponse",
            GetAllQueuedTransfersResponse { .. } => "GetAllQueuedTransfersResponse",
            ScheduleDownloadResponse => "ScheduleDownloadResponse",
            CancelTransferResponse => "CancelTransferResponse",
            ChangeDuStateResponse => "ChangeDUStateResponse",
            Fault(_) => "Fault",
        }
    }

    pub fn kind(&self) -> Kind {
        use Rpc::*;
        match self {
            GetRpcMethods | GetRpcMethodsResponse { .. } => Kind::Either,
            Inform(_)
            | TransferComplete(_)
            | AutonomousTransferComplete(_)
            | RequestDownload { .. }
            | Kicked { .. }
            | DuStateChangeComplete { .. }
            | AutonomousDuStateChangeComplete { .. } => Kind::CpeRequest,
            InformResponse { .. }
            | TransferCompleteResponse
            | AutonomousTransferCompleteResponse
            | RequestDownloadResponse
            | KickedResponse { .. }
            | DuStateChangeCompleteResponse
            | AutonomousDuStateChangeCompleteResponse => Kind::AcsResponse,
            SetParameterValues { .. }
            | GetParameterValues { .. }
            | GetParameterNames { .. }
            | SetParameterAttributes { .. }
            | GetParameterAttributes { .. }
            | AddObject { .. }
            | DeleteObject { .. }
            | Reboot { .. }
            | Download(_)
            | Upload(_)
            | FactoryReset
            | ScheduleInform { .. }
            | GetQueuedTransfers
            | GetAllQueuedTransfers
            | ScheduleDownload(_)
            | CancelTransfer { .. }
            | ChangeDuState { .. } => Kind::AcsRequest,
            Fault(_) => Kind::Fault,
            _ => Kind::CpeResponse,
        }
    }

    /// The response element name a request expects (`None` for responses and faults).
    pub fn response_method(&self) -> Option<&'static str> {
        match self.kind() {
            Kind::CpeRequest | Kind::AcsRequest => {}
            Kind::Either if matches!(self, Rpc::GetRpcMethods) => {}
            _ => return None,
        }
        let m = self.method();
        RESPONSES.iter().find(|(q, _)| *q == m).map(|(_, r)| *r)
    }
}

const RESPONSES: &[(&str, &str)] = &[
    ("GetRPCMethods", "GetRPCMethodsResponse"),
    ("Inform", "InformResponse"),
    ("TransferComplete", "TransferCompleteResponse"),
    (
        "AutonomousTransferComplete",
        "AutonomousTransferCompleteResponse",
    ),
    ("RequestDownload", "RequestDownloadResponse"),
    ("Kicked", "KickedResponse"),
    ("DUStateChangeComplete", "DUStateChangeCompleteResponse"),
    (
        "AutonomousDUStateChangeComplete",
        "AutonomousDUStateChangeCompleteResponse",
    ),
    ("SetParameterValues", "SetParameterValuesResponse"),
    ("GetParameterValues", "GetParameterValuesResponse"),
    ("GetParameterNames", "GetParameterNamesResponse"),
    ("SetParameterAttributes", "SetParameterAttributesResponse"),
    ("GetParameterAttributes", "GetParameterAttributesResponse"),
    ("AddObject", "AddObjectResponse"),
    ("DeleteObject", "DeleteObjectResponse"),
    ("Reboot", "RebootResponse"),
    ("Download", "DownloadResponse"),
    ("Upload", "UploadResponse"),
    ("FactoryReset", "FactoryResetResponse"),
    ("ScheduleInform", "ScheduleInformResponse"),
    ("GetQueuedTransfers", "GetQueuedTransfersResponse"),
    ("GetAllQueuedTransfers", "GetAllQueuedTransfersResponse"),
    ("ScheduleDownload", "ScheduleDownloadResponse"),
    ("CancelTransfer", "CancelTransferResponse"),
    ("ChangeDUState", "ChangeDUStateResponse"),
];

// ---------------------------------------------------------------------------------------------
// Decoding

fn text<'a>(n: &'a Node, name: &'static str) -> Result<&'a str, Error> {
    n.child(name)
        .map(|c| c.text.as_str())
        .ok_or(Error::Missing {
            element: name,
            parent: static_parent_name(n),
        })
}

fn opt(n: &Node, name: &str) -> String {
    n.child(name).map(|c| c.text.clone()).unwrap_or_default()
}

fn num<T: std::str::FromStr>(n: &Node, name: &'static str) -> Result<T, Error> {
    match n.child(name) {
        None => "0".parse().map_err(|_| Error::BadValue {
            element: name,
            value: String::new(),
        }),
        Some(c) => c.text.trim().parse().map_err(|_| Error::BadValue {
            element: name,
            value: truncate(&c.text),
        }),
    }
}

fn boolean(n: &Node, name: &'static str) -> Result<bool, Error> {
    match n.child(name).map(|c| c.text.trim()) {
        None => Ok(false),
        Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(v) => Err(Error::BadValue {
            element: name,
            value: truncate(v),
        }),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `n`'s name as one of a fixed set of `'static` names ("the RPC" for any other), so that
/// errors naming the parent stay `'static` and small. Nothing is leaked.
fn static_parent_name(n: &Node) -> &'static str {
    const KNOWN: &[&str] = &[
        "DeviceId",
        "EventStruct",
        "ParameterValueStruct",
        "ParameterInfoStruct",
        "ParameterAttributeStruct",
        "SetParameterAttributesStruct",
        "FaultStruct",
        "Fault",
        "SetParameterValuesFault",
        "Inform",
        "Operations",
    ];
    KNOWN
        .iter()
        .find(|k| **k == n.name.as_ref())
        .copied()
        .unwrap_or("the RPC")
}

fn items<'a>(n: &'a Node, array: &str) -> impl Iterator<Item = &'a Node> {
    n.child(array).into_iter().flat_map(|a| a.children.iter())
}

fn strings(n: &Node, array: &str) -> Vec<String> {
    items(n, array).map(|c| c.text.clone()).collect()
}

fn values(n: &Node, array: &str) -> Result<Vec<ParameterValue>, Error> {
    items(n, array)
        .map(|p| {
            let v = p.child("Value");
            let ty = v
                .and_then(|v| v.attr("type"))
                .map(|t| t.rsplit(':').next().unwrap_or(t))
                .filter(|t| valid_type(t))
                .unwrap_or("string")
                .to_owned();
            Ok(ParameterValue {
                name: text(p, "Name")?.to_owned(),
                value: v.map(|v| v.text.clone()).unwrap_or_default(),
                ty,
            })
        })
        .collect()
}

fn transfer_fault(n: &Node, name: &'static str) -> Result<TransferFault, Error> {
    match n.child(name) {
        None => Ok(TransferFault::default()),
        Some(f) => Ok(TransferFault {
            code: num(f, "FaultCode")?,
            string: opt(f, "FaultString"),
        }),
    }
}

fn op_result(r: &Node) -> Result<OpResult, Error> {
    Ok(OpResult {
        uuid: opt(r, "UUID"),
        deployment_unit_ref: opt(r, "DeploymentUnitRef"),
        version: opt(r, "Version"),
        current_state: opt(r, "CurrentState"),
        resolved: boolean(r, "Resolved")?,
        execution_unit_ref_list: opt(r, "ExecutionUnitRefList"),
        start_time: opt(r, "StartTime"),
        complete_time: opt(r, "CompleteTime"),
        fault: transfer_fault(r, "Fault")?,
        operation_performed: r.child("OperationPerformed").map(|c| c.text.clone()),
    })
}

fn transfers(n: &Node, all: bool) -> Result<Vec<QueuedTransfer>, Error> {
    items(n, "TransferList")
        .map(|t| {
            Ok(QueuedTransfer {
                command_key: opt(t, "CommandKey"),
                state: num(t, "State")?,
                all: if all {
                    Some(AllQueuedTransfer {
                        is_download: boolean(t, "IsDownload")?,
                        file_type: opt(t, "FileType"),
                        file_size: num(t, "FileSize")?,
                        target_file_name: opt(t, "TargetFileName"),
                    })
                } else {
                    None
                },
            })
        })
        .collect()
}

/// Decodes the RPC element `n` (a child of `Body`).
pub(crate) fn decode(n: &Node) -> Result<Rpc, Error> {
    use Rpc::*;
    if n.ns == Ns::SoapEnv {
        if n.name != "Fault" {
            return Err(Error::UnknownMethod {
                name: truncate(&n.name),
            });
        }
        return decode_fault(n);
    }
    let rpc = match n.name.as_ref() {
        "GetRPCMethods" => GetRpcMethods,
        "GetRPCMethodsResponse" => GetRpcMethodsResponse {
            methods: strings(n, "MethodList"),
        },
        "Inform" => {
            let d = n.child("DeviceId").ok_or(Error::Missing {
                element: "DeviceId",
                parent: "Inform",
            })?;
            Inform(Box::new(self::Inform {
                device_id: DeviceId {
                    manufacturer: opt(d, "Manufacturer"),
                    oui: text(d, "OUI")?.to_owned(),
                    product_class: opt(d, "ProductClass"),
                    serial_number: text(d, "SerialNumber")?.to_owned(),
                },
                events: items(n, "Event")
                    .map(|e| EventStruct {
                        code: opt(e, "EventCode"),
                        command_key: opt(e, "CommandKey"),
                    })
                    .collect(),
                max_envelopes: num(n, "MaxEnvelopes")?,
                current_time: opt(n, "CurrentTime"),
                retry_count: num(n, "RetryCount")?,
                parameters: values(n, "ParameterList")?,
            }))
        }
        "TransferComplete" => TransferComplete(self::TransferComplete {
            command_key: opt(n, "CommandKey"),
            fault: transfer_fault(n, "FaultStruct")?,
            start_time: opt(n, "StartTime"),
            complete_time: opt(n, "CompleteTime"),
        }),
        "AutonomousTransferComplete" => {
            AutonomousTransferComplete(Box::new(self::AutonomousTransferComplete {
                announce_url: opt(n, "AnnounceURL"),
                transfer_url: opt(n, "TransferURL"),
                is_download: boolean(n, "IsDownload")?,
                file_type: opt(n, "FileType"),
                file_size: num(n, "FileSize")?,
                target_file_name: opt(n, "TargetFileName"),
                fault: transfer_fault(n, "FaultStruct")?,
                start_time: opt(n, "StartTime"),
                complete_time: opt(n, "CompleteTime"),
            }))
        }
        "RequestDownload" => RequestDownload {
            file_type: opt(n, "FileType"),
            args: items(n, "FileTypeArg")
                .map(|a| (opt(a, "Name"), opt(a, "Value")))
                .collect(),
        },
        "Kicked" => Kicked {
            command: opt(n, "Command"),
            referer: opt(n, "Referer"),
            arg: opt(n, "Arg"),
            next: opt(n, "Next"),
        },
        "DUStateChangeComplete" => DuStateChangeComplete {
            results: n
                .children
                .iter()
                .filter(|c| c.name == "Results")
                .map(op_result)
                .collect::<Result<_, _>>()?,
            command_key: opt(n, "CommandKey"),
        },
        "AutonomousDUStateChangeComplete" => AutonomousDuStateChangeComplete {
            results: n
                .children
                .iter()
                .filter(|c| c.name == "Results")
                .map(op_result)
                .collect::<Result<_, _>>()?,
        },
        "InformResponse" => InformResponse {
            max_envelopes: num(n, "MaxEnvelopes")?,
        },
        "TransferCompleteResponse" => TransferCompleteResponse,
        "AutonomousTransferCompleteResponse" => AutonomousTransferCompleteResponse,
        "RequestDownloadResponse" => RequestDownloadResponse,
        "KickedResponse" => KickedResponse {
            next_url: opt(n, "NextURL"),
        },
        "DUStateChangeCompleteResponse" => DuStateChangeCompleteResponse,
        "AutonomousDUStateChangeCompleteResponse" => AutonomousDuStateChangeCompleteResponse,
        "SetParameterValues" => SetParameterValues {
            parameters: values(n, "ParameterList")?,
            parameter_key: opt(n, "ParameterKey"),
        },
        "GetParameterValues" => GetParameterValues {
            names: strings(n, "ParameterNames"),
        },
        "GetParameterNames" => GetParameterNames {
            path: opt(n, "ParameterPath"),
            next_level: boolean(n, "NextLevel")?,
        },
        "SetParameterAttributes" => SetParameterAttributes {
            parameters: items(n, "ParameterList")
                .map(|p| {
                    Ok(SetParameterAttribute {
                        name: text(p, "Name")?.to_owned(),
                        notification_change: boolean(p, "NotificationChange")?,
                        notification: num(p, "Notification")?,
                        access_list_change: boolean(p, "AccessListChange")?,
                        access_list: strings(p, "AccessList"),
                    })
                })
                .collect::<Result<_, Error>>()?,
        },
        "GetParameterAttributes" => GetParameterAttributes {
            names: strings(n, "ParameterNames"),
        },
        "AddObject" => AddObject {
            object_name: opt(n, "ObjectName"),
            parameter_key: opt(n, "ParameterKey"),
        },
        "DeleteObject" => DeleteObject {
            object_name: opt(n, "ObjectName"),
            parameter_key: opt(n, "ParameterKey"),
        },
        "Reboot" => Reboot {
            command_key: opt(n, "CommandKey"),
        },
        "Download" => Download(Box::new(self::Download {
            command_key: opt(n, "CommandKey"),
            file_type: opt(n, "FileType"),
            url: opt(n, "URL"),
            username: opt(n, "Username"),
            password: opt(n, "Password"),
            file_size: num(n, "FileSize")?,
            target_file_name: opt(n, "TargetFileName"),
            delay_seconds: num(n, "DelaySeconds")?,
            success_url: opt(n, "SuccessURL"),
            failure_url: opt(n, "FailureURL"),
        })),
        "Upload" => Upload(Box::new(self::Upload {
            command_key: opt(n, "CommandKey"),
            file_type: opt(n, "FileType"),
            url: opt(n, "URL"),
            username: opt(n, "Username"),
            password: opt(n, "Password"),
            delay_seconds: num(n, "DelaySeconds")?,
        })),
        "FactoryReset" => FactoryReset,
        "ScheduleInform" => ScheduleInform {
            delay_seconds: num(n, "DelaySeconds")?,
            command_key: opt(n, "CommandKey"),
        },
        "GetQueuedTransfers" => GetQueuedTransfers,
        "GetAllQueuedTransfers" => GetAllQueuedTransfers,
        "ScheduleDownload" => ScheduleDownload(Box::new(self::ScheduleDownload {
            command_key: opt(n, "CommandKey"),
            file_type: opt(n, "FileType"),
            url: opt(n, "URL"),
            username: opt(n, "Username"),
            password: opt(n, "Password"),
            file_size: num(n, "FileSize")?,
            target_file_name: opt(n, "TargetFileName"),
            windows: items(n, "TimeWindowList")
                .map(|w| {
                    Ok(TimeWindow {
                        start: num(w, "WindowStart")?,
                        end: num(w, "WindowEnd")?,
                        mode: opt(w, "WindowMode"),
                        user_message: opt(w, "UserMessage"),
                        max_retries: num(w, "MaxRetries")?,
                    })
                })
                .collect::<Result<_, Error>>()?,
        })),
        "CancelTransfer" => CancelTransfer {
            command_key: opt(n, "CommandKey"),
        },
        "ChangeDUState" => ChangeDuState {
            operations: n
                .children
                .iter()
                .filter(|c| c.name == "Operations")
                .map(|o| {
                    let ty = o.attr("type").unwrap_or("");
                    let ty = ty.rsplit(':').next().unwrap_or(ty);
                    Ok(match ty {
                        "InstallOpStruct" => DuOperation::Install {
                            url: opt(o, "URL"),
                            uuid: opt(o, "UUID"),
                            username: opt(o, "Username"),
                            password: opt(o, "Password"),
                            execution_env_ref: opt(o, "ExecutionEnvRef"),
                        },
                        "UpdateOpStruct" => DuOperation::Update {
                            uuid: opt(o, "UUID"),
                            version: opt(o, "Version"),
                            url: opt(o, "URL"),
                            username: opt(o, "Username"),
                            password: opt(o, "Password"),
                        },
                        "UninstallOpStruct" => DuOperation::Uninstall {
                            uuid: opt(o, "UUID"),
                            version: opt(o, "Version"),
                            execution_env_ref: opt(o, "ExecutionEnvRef"),
                        },
                        other => {
                            return Err(Error::BadValue {
                                element: "Operations",
                                value: truncate(other),
                            });
                        }
                    })
                })
                .collect::<Result<_, Error>>()?,
            command_key: opt(n, "CommandKey"),
        },
        "SetParameterValuesResponse" => SetParameterValuesResponse {
            status: num(n, "Status")?,
        },
        "GetParameterValuesResponse" => GetParameterValuesResponse {
            parameters: values(n, "ParameterList")?,
        },
        "GetParameterNamesResponse" => GetParameterNamesResponse {
            parameters: items(n, "ParameterList")
                .map(|p| {
                    Ok(ParameterInfo {
                        name: text(p, "Name")?.to_owned(),
                        writable: boolean(p, "Writable")?,
                    })
                })
                .collect::<Result<_, Error>>()?,
        },
        "SetParameterAttributesResponse" => SetParameterAttributesResponse,
        "GetParameterAttributesResponse" => GetParameterAttributesResponse {
            parameters: items(n, "ParameterList")
                .map(|p| {
                    Ok(ParameterAttribute {
                        name: text(p, "Name")?.to_owned(),
                        notification: num(p, "Notification")?,
                        access_list: strings(p, "AccessList"),
                    })
                })
                .collect::<Result<_, Error>>()?,
        },
        "AddObjectResponse" => AddObjectResponse {
            instance_number: num(n, "InstanceNumber")?,
            status: num(n, "Status")?,
        },
        "DeleteObjectResponse" => DeleteObjectResponse {
            status: num(n, "Status")?,
        },
        "RebootResponse" => RebootResponse,
        "DownloadResponse" => DownloadResponse {
            status: num(n, "Status")?,
            start_time: opt(n, "StartTime"),
            complete_time: opt(n, "CompleteTime"),
        },
        "UploadResponse" => UploadResponse {
            status: num(n, "Status")?,
            start_time: opt(n, "StartTime"),
            complete_time: opt(n, "CompleteTime"),
        },
        "FactoryResetResponse" => FactoryResetResponse,
        "ScheduleInformResponse" => ScheduleInformResponse,
        "GetQueuedTransfersResponse" => GetQueuedTransfersResponse {
            transfers: transfers(n, false)?,
        },
        "GetAllQueuedTransfersResponse" => GetAllQueuedTransfersResponse {
            transfers: transfers(n, true)?,
        },
        "ScheduleDownloadResponse" => ScheduleDownloadResponse,
        "CancelTransferResponse" => CancelTransferResponse,
        "ChangeDUStateResponse" => ChangeDuStateResponse,
        other => {
            return Err(Error::UnknownMethod {
                name: truncate(other),
            });
        }
    };
    if !matches!(n.ns, Ns::Cwmp(_)) {
        return Err(Error::WrongNamespace {
            element: truncate(&n.name),
        });
    }
    Ok(rpc)
}

fn decode_fault(n: &Node) -> Result<Rpc, Error> {
    let f = n
        .child("detail")
        .and_then(|d| d.child("Fault"))
        .ok_or(Error::Missing {
            element: "detail/Fault",
            parent: "Fault",
        })?;
    Ok(Rpc::Fault(Fault {
        code: num(f, "FaultCode")?,
        string: opt(f, "FaultString"),
        spv: f
            .children
            .iter()
            .filter(|c| c.name == "SetParameterValuesFault")
            .map(|s| {
                Ok(SpvFault {
                    name: opt(s, "ParameterName"),
                    code: num(s, "FaultCode")?,
                    string: opt(s, "FaultString"),
                })
            })
            .collect::<Result<_, Error>>()?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// A little writer for unqualified child elements.
pub(crate) struct W<'a> {
    pub out: &'a mut String,
}

impl W<'_> {
    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(self.out, text);
        self.close(name);
    }

    /// An optional element: left out when empty (minOccurs=0 with a pattern empty fails).
    fn opt_leaf(&mut self, name: &str, text: &str) {
        if !text.is_empty() {
            self.leaf(name, text);
        }
    }

    fn num(&mut self, name: &str, v: impl std::fmt::Display) {
        use std::fmt::Write;
        self.open(name);
        let _ = write!(self.out, "{v}");
        self.close(name);
    }

    fn boolean(&mut self, name: &str, v: bool) {
        self.leaf(name, if v { "1" } else { "0" });
    }

    /// A dateTime: an empty one (unknown) is written as the schema's "unknown" time.
    fn time(&mut self, name: &str, v: &str) {
        self.leaf(name, if v.is_empty() { UNKNOWN_TIME } else { v });
    }

    fn array(&mut self, name: &str, ty: &str, n: usize) {
        use std::fmt::Write;
        let _ = write!(self.out, "<{name} soap-enc:arrayType=\"{ty}[{n}]\">");
    }

    fn strings(&mut self, name: &str, items: &[String]) {
        self.array(name, "xsd:string", items.len());
        for s in items {
            self.leaf("string", s);
        }
        self.close(name);
    }

    fn values(&mut self, name: &str, items: &[ParameterValue]) {
        self.array(name, "cwmp:ParameterValueStruct", items.len());
        for p in items {
            self.open("ParameterValueStruct");
            self.leaf("Name", &p.name);
            self.out.push_str("<Value xsi:type=\"xsd:");
            self.out
                .push_str(if valid_type(&p.ty) { &p.ty } else { "string" });
            self.out.push_str("\">");
            escape_into(self.out, &p.value);
            self.close("Value");
            self.close("ParameterValueStruct");
        }
        self.close(name);
    }

    fn fault_struct(&mut self, name: &str, f: &TransferFault) {
        self.open(name);
        self.num("FaultCode", f.code);
        self.leaf("FaultString", &f.string);
        self.close(name);
    }

    fn op_result(&mut self, r: &OpResult) {
        match &r.operation_performed {
            Some(_) => self
                .out
                .push_str("<Results xsi:type=\"cwmp:AutonOpResultStruct\">"),
            None => self.open("Results"),
        }
        self.leaf("UUID", &r.uuid);
        self.leaf("DeploymentUnitRef", &r.deployment_unit_ref);
        self.leaf("Version", &r.version);
        self.leaf("CurrentState", &r.current_state);
        self.boolean("Resolved", r.resolved);
        self.leaf("ExecutionUnitRefList", &r.execution_unit_ref_list);
        self.time("StartTime", &r.start_time);
        self.time("CompleteTime", &r.complete_time);
        self.fault_struct("Fault", &r.fault);
        if let Some(op) = &r.operation_performed {
            self.leaf("OperationPerformed", op);
        }
        self.close("Results");
    }
}

pub const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

/// xsi:type values we pass through: an XSD built-in name, nothing that could break the
/// attribute.
fn valid_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Writes the RPC element (qualified with `cwmp:`, or `soap-env:Fault`) into `out`.
pub(crate) fn encode(rpc: &Rpc, out: &mut String) {
    use Rpc::*;
    if let Fault(f) = rpc {
        encode_fault(f, out);
        return;
    }
    let m = rpc.method();
    let mut w = W { out };
    // Bodiless messages as empty elements.
    let empty = matches!(
        rpc,
        GetRpcMethods
            | TransferCompleteResponse
            | AutonomousTransferCompleteResponse
            | RequestDownloadResponse
            | DuStateChangeCompleteResponse
            | AutonomousDuStateChangeCompleteResponse
            | FactoryReset
            | GetQueuedTransfers
            | GetAllQueuedTransfers
            | SetParameterAttributesResponse
            | RebootResponse
            | FactoryResetResponse
            | ScheduleInformResponse
            | ScheduleDownloadResponse
            | CancelTransferResponse
            | ChangeDuStateResponse
    );
    w.out.push_str("<cwmp:");
    w.out.push_str(m);
    if empty {
        w.out.push_str("/>");
        return;
    }
    w.out.push('>');
    match rpc {
        GetRpcMethodsResponse { methods } => w.strings("MethodList", methods),
        Inform(i) => {
            w.open("DeviceId");
            w.leaf("Manufacturer", &i.device_id.manufacturer);
            w.leaf("OUI", &i.device_id.oui);
            w.leaf("ProductClass", &i.device_id.product_class);
            w.leaf("SerialNumber", &i.device_id.serial_number);
            w.close("DeviceId");
            w.array("Event", "cwmp:EventStruct", i.events.len());
            for e in &i.events {
                w.open("EventStruct");
                w.leaf("EventCode", &e.code);
                w.leaf("CommandKey", &e.command_key);
                w.close("EventStruct");
            }
            w.close("Event");
            w.num("MaxEnvelopes", i.max_envelopes);
            w.time("CurrentTime", &i.current_time);
            w.num("RetryCount", i.retry_count);
            w.values("ParameterList", &i.parameters);
        }
        TransferComplete(t) => {
            w.leaf("CommandKey", &t.command_key);
            w.fault_struct("FaultStruct", &t.fault);
            w.time("StartTime", &t.start_time);
            w.time("CompleteTime", &t.complete_time);
        }
        AutonomousTransferComplete(t) => {
            w.leaf("AnnounceURL", &t.announce_url);
            w.leaf("TransferURL", &t.transfer_url);
            w.boolean("IsDownload", t.is_download);
            w.leaf("FileType", &t.file_type);
            w.num("FileSize", t.file_size);
            w.leaf("TargetFileName", &t.target_file_name);
            w.fault_struct("FaultStruct", &t.fault);
            w.time("StartTime", &t.start_time);
            w.time("CompleteTime", &t.complete_time);
        }
        RequestDownload { file_type, args } => {
            w.leaf("FileType", file_type);
            w.array("FileTypeArg", "cwmp:ArgStruct", args.len());
            for (k, v) in args {
                w.open("ArgStruct");
                w.leaf("Name", k);
                w.leaf("Value", v);
                w.close("ArgStruct");
            }
            w.close("FileTypeArg");
        }
        Kicked {
            command,
            referer,
            arg,
            next,
        } => {
            w.leaf("Command", command);
            w.leaf("Referer", referer);
            w.leaf("Arg", arg);
            w.leaf("Next", next);
        }
        DuStateChangeComplete {
            results,
            command_key,
        } => {
            results.iter().for_each(|r| w.op_result(r));
            w.leaf("CommandKey", command_key);
        }
        AutonomousDuStateChangeComplete { results } => {
            results.iter().for_each(|r| w.op_result(r));
        }
        InformResponse { max_envelopes } => w.num("MaxEnvelopes", max_envelopes),
        KickedResponse { next_url } => w.leaf("NextURL", next_url),
        SetParameterValues {
            parameters,
            parameter_key,
        } => {
            w.values("ParameterList", parameters);
            w.leaf("ParameterKey", parameter_key);
        }
        GetParameterValues { names } => w.strings("ParameterNames", names),
        GetParameterNames { path, next_level } => {
            w.leaf("ParameterPath", path);
            w.boolean("NextLevel", *next_level);
        }
        SetParameterAttributes { parameters } => {
            w.array(
                "ParameterList",
                "cwmp:SetParameterAttributesStruct",
                parameters.len(),
            );
            for p in parameters {
                w.open("SetParameterAttributesStruct");
                w.leaf("Name", &p.name);
                w.boolean("NotificationChange", p.notification_change);
                w.num("Notification", p.notification);
                w.boolean("AccessListChange", p.access_list_change);
                w.strings("AccessList", &p.access_list);
                w.close("SetParameterAttributesStruct");
            }
            w.close("ParameterList");
        }
        GetParameterAttributes { names } => w.strings("ParameterNames", names),
        AddObject {
            object_name,
            parameter_key,
        }
        | DeleteObject {
            object_name,
            parameter_key,
        } => {
            w.leaf("ObjectName", object_name);
            w.leaf("ParameterKey", parameter_key);
        }
        Reboot { command_key } | CancelTransfer { command_key } => {
            w.leaf("CommandKey", command_key)
        }
        Download(d) => {
            w.leaf("CommandKey", &d.command_key);
            w.leaf("FileType", &d.file_type);
            w.leaf("URL", &d.url);
            w.leaf("Username", &d.username);
            w.leaf("Password", &d.password);
            w.num("FileSize", d.file_size);
            w.leaf("TargetFileName", &d.target_file_name);
            w.num("DelaySeconds", d.delay_seconds);
            w.leaf("SuccessURL", &d.success_url);
            w.leaf("FailureURL", &d.failure_url);
        }
        Upload(u) => {
            w.leaf("CommandKey", &u.command_key);
            w.leaf("FileType", &u.file_type);
            w.leaf("URL", &u.url);
            w.leaf("Username", &u.username);
            w.leaf("Password", &u.password);
            w.num("DelaySeconds", u.delay_seconds);
        }
        ScheduleInform {
            delay_seconds,
            command_key,
        } => {
            w.num("DelaySeconds", delay_seconds);
            w.leaf("CommandKey", command_key);
        }
        ScheduleDownload(d) => {
            w.leaf("CommandKey", &d.command_key);
            w.leaf("FileType", &d.file_type);
            w.leaf("URL", &d.url);
            w.leaf("Username", &d.username);
            w.leaf("Password", &d.password);
            w.num("FileSize", d.file_size);
            w.leaf("TargetFileName", &d.target_file_name);
            w.array("TimeWindowList", "cwmp:TimeWindowStruct", d.windows.len());
            for t in &d.windows {
                w.open("TimeWindowStruct");
                w.num("WindowStart", t.start);
                w.num("WindowEnd", t.end);
                w.leaf("WindowMode", &t.mode);
                w.leaf("UserMessage", &t.user_message);
                w.num("MaxRetries", t.max_retries);
                w.close("TimeWindowStruct");
            }
            w.close("TimeWindowList");
        }
        ChangeDuState {
            operations,
            command_key,
        } => {
            for op in operations {
                match op {
                    DuOperation::Install {
                        url,
                        uuid,
                        username,
                        password,
                        execution_env_ref,
                    } => {
                        w.out
                            .push_str("<Operations xsi:type=\"cwmp:InstallOpStruct\">");
                        w.leaf("URL", url);
                        w.opt_leaf("UUID", uuid);
                        w.opt_leaf("Username", username);
                        w.opt_leaf("Password", password);
                        w.opt_leaf("ExecutionEnvRef", execution_env_ref);
                    }
                    DuOperation::Update {
                        uuid,
                        version,
                        url,
                        username,
                        password,
                    } => {
                        w.out
                            .push_str("<Operations xsi:type=\"cwmp:UpdateOpStruct\">");
                        w.opt_leaf("UUID", uuid);
                        w.opt_leaf("Version", version);
                        w.leaf("URL", url);
                        w.opt_leaf("Username", username);
                        w.opt_leaf("Password", password);
                    }
                    DuOperation::Uninstall {
                        uuid,
                        version,
                        execution_env_ref,
                    } => {
                        w.out
                            .push_str("<Operations xsi:type=\"cwmp:UninstallOpStruct\">");
                        w.opt_leaf("UUID", uuid);
                        w.opt_leaf("Version", version);
                        w.opt_leaf("ExecutionEnvRef", execution_env_ref);
                    }
                }
                w.close("Operations");
            }
            w.leaf("CommandKey", command_key);
        }
        SetParameterValuesResponse { status } | DeleteObjectResponse { status } => {
            w.num("Status", status)
        }
        GetParameterValuesResponse { parameters } => w.values("ParameterList", parameters),
        GetParameterNamesResponse { parameters } => {
            w.array(
                "ParameterList",
                "cwmp:ParameterInfoStruct",
                parameters.len(),
            );
            for p in parameters {
                w.open("ParameterInfoStruct");
                w.leaf("Name", &p.name);
                w.boolean("Writable", p.writable);
                w.close("ParameterInfoStruct");
            }
            w.close("ParameterList");
        }
        GetParameterAttributesResponse { parameters } => {
            w.array(
                "ParameterList",
                "cwmp:ParameterAttributeStruct",
                parameters.len(),
            );
            for p in parameters {
                w.open("ParameterAttributeStruct");
                w.leaf("Name", &p.name);
                w.num("Notification", p.notification);
                w.strings("AccessList", &p.access_list);
                w.close("ParameterAttributeStruct");
            }
            w.close("ParameterList");
        }
        AddObjectResponse {
            instance_number,
            status,
        } => {
            w.num("InstanceNumber", instance_number);
            w.num("Status", status);
        }
        DownloadResponse {
            status,
            start_time,
            complete_time,
        }
        | UploadResponse {
            status,
            start_time,
            complete_time,
        } => {
            w.num("Status", status);
            w.time("StartTime", start_time);
            w.time("CompleteTime", complete_time);
        }
        GetQueuedTransfersResponse { transfers } | GetAllQueuedTransfersResponse { transfers } => {
            let all = matches!(rpc, GetAllQueuedTransfersResponse { .. });
            let (item, ty) = if all {
                ("AllQueuedTransferStruct", "cwmp:AllQueuedTransferStruct")
            } else {
                ("QueuedTransferStruct", "cwmp:QueuedTransferStruct")
            };
            w.array("TransferList", ty, transfers.len());
            for t in transfers {
                w.open(item);
                w.leaf("CommandKey", &t.command_key);
                w.num("State", t.state);
                if all {
                    let a = t.all.clone().unwrap_or_default();
                    w.boolean("IsDownload", a.is_download);
                    w.leaf("FileType", &a.file_type);
                    w.num("FileSize", a.file_size);
                    w.leaf("TargetFileName", &a.target_file_name);
                }
                w.close(item);
            }
            w.close("TransferList");
        }
        // Written above as empty elements, or the fault branch.
        _ => {}
    }
    w.out.push_str("</cwmp:");
    w.out.push_str(m);
    w.out.push('>');
}

fn encode_fault(f: &Fault, out: &mut String) {
    let mut w = W { out };
    w.out.push_str("<soap-env:Fault>");
    w.leaf("faultcode", f.soap_code());
    w.leaf("faultstring", "CWMP fault");
    w.open("detail");
    w.out.push_str("<cwmp:Fault>");
    w.num("FaultCode", f.code);
    w.leaf("FaultString", &f.string);
    for s in &f.spv {
        w.open("SetParameterValuesFault");
        w.leaf("ParameterName", &s.name);
        w.num("FaultCode", s.code);
        w.leaf("FaultString", &s.string);
        w.close("SetParameterValuesFault");
    }
    w.out.push_str("</cwmp:Fault>");
    w.close("detail");
    w.out.push_str("</soap-env:Fault>");
}
