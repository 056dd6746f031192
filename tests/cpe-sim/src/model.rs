//! The simulated device's data model (loaded from a genieacs-sim CSV dump of a real device) and
//! its answers to every ACS request, as a CPE would give them: partial-path GPV, atomic SPV
//! with per-parameter faults, GPN with NextLevel, attributes, objects, and the side effects the
//! session loop acts on (reboot, factory reset, download, scheduled inform, ACS URL change).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use provd_cwmp::{
    DeviceId, Fault, ParameterAttribute, ParameterInfo, ParameterValue, Rpc, SpvFault,
};

#[derive(Debug, Clone)]
pub struct Param {
    pub value: String,
    /// xsd type local name; empty for objects.
    pub ty: String,
    pub writable: bool,
    pub notification: u8,
}

/// What a request asks the device to do once the session is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Reboot {
        command_key: String,
    },
    FactoryReset,
    Download(Box<provd_cwmp::Download>),
    ScheduleInform {
        delay: u32,
        command_key: String,
    },
    /// ManagementServer.URL changed: the next session goes to the new ACS, as a bootstrap.
    AcsUrlChanged,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub id: DeviceId,
    pub root: String,
    /// Objects end with '.'.
    pub params: BTreeMap<String, Param>,
    initial: BTreeMap<String, Param>,
}

/// One CSV record: quoted fields may hold commas and doubled quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

impl Model {
    /// Loads a genieacs-sim CSV (Parameter, Object, Writable, Value, Value type) and gives the
    /// device the serial number `serial`.
    pub fn load(csv: &str, serial: &str) -> Result<Model> {
        let mut params = BTreeMap::new();
        let mut id = DeviceId::default();
        for (i, line) in csv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f = csv_fields(line);
            anyhow::ensure!(f.len() >= 5, "line {}: {} fields", i + 1, f.len());
            let (name, object, writable, value, ty) =
                (&f[0], f[1] == "true", f[2] == "true", &f[3], &f[4]);
            match name.as_str() {
                "DeviceID.Manufacturer" => id.manufacturer = value.clone(),
                "DeviceID.OUI" => id.oui = value.clone(),
                "DeviceID.ProductClass" => id.product_class = value.clone(),
                "DeviceID.SerialNumber" => {}
                _ if name.starts_with("DeviceID.") => {}
                _ => {
                    let key = if object {
                        format!("{name}.")
                    } else {
                        name.clone()
                    };
                    params.insert(
                        key,
                        Param {
                            value: if object { String::new() } else { value.clone() },
                            ty: ty.trim_start_matches("xsd:").to_owned(),
                            writable,
                            notification: 0,
                        },
                    );
                }
            }
        }
        id.serial_number = serial.to_owned();
        let root = params
            .keys()
            .next()
            .and_then(|k| k.split('.').next())
            .context("an empty data model")?
            .to_owned()
            + ".";
        let mut m = Model {
            id,
            root,
            params,
            initial: BTreeMap::new(),
        };
        m.set(
            &format!("{}DeviceInfo.SerialNumber", m.root),
            serial,
            "string",
            false,
        );
        m.initial = m.params.clone();
        Ok(m)
    }

    pub fn get(&self, suffix: &str) -> Option<&str> {
        self.params
            .get(&format!("{}{suffix}", self.root))
            .map(|p| p.value.as_str())
    }

    /// Sets (or creates) a parameter locally.
    pub fn set(&mut self, name: &str, value: &str, ty: &str, writable: bool) {
        let p = self.params.entry(name.to_owned()).or_insert(Param {
            value: String::new(),
            ty: ty.to_owned(),
            writable,
            notification: 0,
        });
        p.value = value.to_owned();
    }

    pub fn set_local(&mut self, suffix: &str, value: &str) {
        let name = format!("{}{suffix}", self.root);
        let ty = self
            .params
            .get(&name)
            .map_or("string".to_owned(), |p| p.ty.clone());
        self.set(&name, value, &ty, true);
    }

    pub fn factory_reset(&mut self) {
        self.params = self.initial.clone();
    }

    pub fn value(&self, name: &str) -> Option<ParameterValue> {
        let p = self.params.get(name)?;
        Some(ParameterValue::new(
            name,
            p.value.clone(),
            if p.ty.is_empty() { "string" } else { &p.ty },
        ))
    }

    /// Answers one ACS request; `after` collects what to do when the session ends.
    pub fn answer(&mut self, rpc: &Rpc, after: &mut Vec<After>) -> Rpc {
        match rpc {
            Rpc::GetRpcMethods => Rpc::GetRpcMethodsResponse {
                methods: [
                    "GetRPCMethods",
                    "SetParameterValues",
                    "GetParameterValues",
                    "GetParameterNames",
                    "SetParameterAttributes",
                    "GetParameterAttributes",
                    "AddObject",
                    "DeleteObject",
                    "Reboot",
                    "Download",
                    "FactoryReset",
                    "ScheduleInform",
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            },
            Rpc::GetParameterValues { names } => {
                let mut out = Vec::new();
                for n in names {
                    if n.is_empty() || n.ends_with('.') {
                        let prefix = if n.is_empty() {
                            self.root.clone()
                        } else {
                            n.clone()
                        };
                        if !self.params.contains_key(&prefix) && !n.is_empty() {
                            return fault(9005);
                        }
                        out.extend(
                            self.params
                                .range(prefix.clone()..)
                                .take_while(|(k, _)| k.starts_with(&prefix))
                                .filter(|(k, _)| !k.ends_with('.'))
                                .filter_map(|(k, _)| self.value(k)),
                        );
                    } else {
                        match self.value(n) {
                            Some(v) if !n.ends_with('.') => out.push(v),
                            _ => return fault(9005),
                        }
                    }
                }
                Rpc::GetParameterValuesResponse { parameters: out }
            }
            Rpc::SetParameterValues {
                parameters,
                parameter_key,
            } => {
                let mut faults = Vec::new();
                for p in parameters {
                    let code = match self.params.get(&p.name) {
                        None => Some(9005),
                        Some(_) if p.name.ends_with('.') => Some(9005),
                        Some(cur) if !cur.writable => Some(9008),
                        Some(cur) if !type_ok(&cur.ty, &p.value) => Some(9007),
                        Some(_) => None,
                    };
                    if let Some(code) = code {
                        faults.push(SpvFault {
                            name: p.name.clone(),
                            code,
                            string: provd_cwmp::fault_string(code).into(),
                        });
                    }
                }
                if !faults.is_empty() {
                    let mut f = Fault::new(9003);
                    f.spv = faults;
                    return Rpc::Fault(f);
                }
                let url = format!("{}ManagementServer.URL", self.root);
                for p in parameters {
                    if let Some(cur) = self.params.get_mut(&p.name) {
                        let v = norm_bool(&cur.ty, &p.value);
                        if p.name == url && cur.value != v {
                            after.push(After::AcsUrlChanged);
                        }
                        cur.value = v;
                    }
                }
                let key = format!("{}ManagementServer.ParameterKey", self.root);
                self.set(&key, parameter_key, "string", false);
                Rpc::SetParameterValuesResponse { status: 0 }
            }
            Rpc::GetParameterNames { path, next_level } => {
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    path.clone()
                };
                if !prefix.is_empty() && !self.params.contains_key(&prefix) {
                    return fault(9005);
                }
                let depth = prefix.matches('.').count();
                let list = self
                    .params
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && **k != prefix)
                    .filter(|(k, _)| {
                        let d = k.trim_end_matches('.').matches('.').count() + 1;
                        !*next_level || d == depth + 1 || (prefix.is_empty() && d == 1)
                    })
                    .map(|(k, p)| ParameterInfo {
                        name: k.clone(),
                        writable: p.writable,
                    })
                    .collect();
                Rpc::GetParameterNamesResponse { parameters: list }
            }
            Rpc::GetParameterAttributes { names } => {
                let mut out = Vec::new();
                for n in names {
                    let Some(p) = self.params.get(n) else {
                        return fault(9005);
                    };
                    out.push(ParameterAttribute {
                        name: n.clone(),
                        notification: p.notification,
                        access_list: vec![],
                    });
                }
                Rpc::GetParameterAttributesResponse { parameters: out }
            }
            Rpc::SetParameterAttributes { parameters } => {
                if parameters
                    .iter()
                    .any(|p| !self.params.contains_key(&p.name))
                {
                    return fault(9005);
                }
                for p in parameters {
                    if p.notification_change
                        && let Some(x) = self.params.get_mut(&p.name)
                    {
                        x.notification = p.notification;
                    }
                }
                Rpc::SetParameterAttributesResponse
            }
            Rpc::AddObject { object_name, .. } => {
                if !object_name.ends_with('.') || !self.params.contains_key(object_name) {
                    return fault(9005);
                }
                let next = self
                    .params
                    .range(object_name.clone()..)
                    .take_while(|(k, _)| k.starts_with(object_name.as_str()))
                    .filter_map(|(k, _)| {
                        k[object_name.len()..]
                            .split('.')
                            .next()?
                            .parse::<u32>()
                            .ok()
                    })
                    .max()
                    .unwrap_or(0)
                    + 1;
                self.params.insert(
                    format!("{object_name}{next}."),
                    Param {
                        value: String::new(),
                        ty: String::new(),
                        writable: true,
                        notification: 0,
                    },
                );
                Rpc::AddObjectResponse {
                    instance_number: next,
                    status: 0,
                }
            }
            Rpc::DeleteObject { object_name, .. } => {
                if !object_name.ends_with('.') || !self.params.contains_key(object_name) {
                    return fault(9005);
                }
                self.params
                    .retain(|k, _| !k.starts_with(object_name.as_str()));
                Rpc::DeleteObjectResponse { status: 0 }
            }
            Rpc::Reboot { command_key } => {
                after.push(After::Reboot {
                    command_key: command_key.clone(),
                });
                Rpc::RebootResponse
            }
            Rpc::FactoryReset => {
                after.push(After::FactoryReset);
                Rpc::FactoryResetResponse
            }
            Rpc::Download(d) => {
                if !d.url.starts_with("http://") {
                    return fault(9013);
                }
                after.push(After::Download(d.clone()));
                Rpc::DownloadResponse {
                    status: 1,
                    start_time: String::new(),
                    complete_time: String::new(),
                }
            }
            Rpc::ScheduleInform {
                delay_seconds,
                command_key,
            } => {
                after.push(After::ScheduleInform {
                    delay: *delay_seconds,
                    command_key: command_key.clone(),
                });
                Rpc::ScheduleInformResponse
            }
            _ => fault(9000),
        }
    }
}

fn fault(code: u32) -> Rpc {
    Rpc::Fault(Fault::new(code))
}

fn type_ok(ty: &str, v: &str) -> bool {
    match ty {
        "boolean" => matches!(v, "0" | "1" | "true" | "false"),
        "unsignedInt" => v.parse::<u32>().is_ok(),
        "int" => v.parse::<i32>().is_ok(),
        _ => true,
    }
}

fn norm_bool(ty: &str, v: &str) -> String {
    match (ty, v) {
        ("boolean", "1") => "true".into(),
        ("boolean", "0") => "false".into(),
        _ => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let csv = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/cwmp/datamodels/genieacs-sim_data_model_202BC1-BM632w.csv"
        ))
        .unwrap();
        Model::load(&csv, "SN1").unwrap()
    }

    #[test]
    fn loads_the_device_dump() {
        let m = model();
        assert_eq!(m.root, "InternetGatewayDevice.");
        assert_eq!(
            (m.id.oui.as_str(), m.id.product_class.as_str()),
            ("202BC1", "BM632w")
        );
        assert_eq!(m.id.manufacturer, "Huawei Technologies Co., Ltd.");
        assert_eq!(m.get("DeviceInfo.SerialNumber"), Some("SN1"));
        assert!(
            m.params
                .contains_key("InternetGatewayDevice.ManagementServer.")
        );
    }

    #[test]
    fn spv_is_atomic_with_per_parameter_faults() {
        let mut m = model();
        let mut after = Vec::new();
        let url = "InternetGatewayDevice.ManagementServer.URL";
        let bad = Rpc::SetParameterValues {
            parameters: vec![
                ParameterValue::new(url, "http://new/", "string"),
                ParameterValue::new(
                    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
                    "x",
                    "string",
                ),
                ParameterValue::new("InternetGatewayDevice.Nope", "x", "string"),
                ParameterValue::new(
                    "InternetGatewayDevice.ManagementServer.PeriodicInformEnable",
                    "maybe",
                    "boolean",
                ),
            ],
            parameter_key: "k".into(),
        };
        let Rpc::Fault(f) = m.answer(&bad, &mut after) else {
            panic!()
        };
        let codes: Vec<u32> = f.spv.iter().map(|s| s.code).collect();
        assert_eq!((f.code, codes), (9003, vec![9008, 9005, 9007]));
        assert_ne!(
            m.get("ManagementServer.URL"),
            Some("http://new/"),
            "nothing applied"
        );
        let good = Rpc::SetParameterValues {
            parameters: vec![ParameterValue::new(url, "http://new/", "string")],
            parameter_key: "k2".into(),
        };
        assert_eq!(
            m.answer(&good, &mut after),
            Rpc::SetParameterValuesResponse { status: 0 }
        );
        assert_eq!(m.get("ManagementServer.ParameterKey"), Some("k2"));
        assert_eq!(after, [After::AcsUrlChanged]);
    }

    #[test]
    fn gpv_partial_path_and_unknown_names() {
        let mut m = model();
        let mut after = Vec::new();
        let r = m.answer(
            &Rpc::GetParameterValues {
                names: vec!["InternetGatewayDevice.ManagementServer.".into()],
            },
            &mut after,
        );
        let Rpc::GetParameterValuesResponse { parameters } = r else {
            panic!()
        };
        assert!(parameters.iter().all(|p| {
            p.name
                .starts_with("InternetGatewayDevice.ManagementServer.")
        }));
        assert!(
            parameters
                .iter()
                .any(|p| p.name.ends_with(".PeriodicInformInterval") && p.ty == "unsignedInt")
        );
        let r = m.answer(
            &Rpc::GetParameterValues {
                names: vec!["InternetGatewayDevice.Nope".into()],
            },
            &mut after,
        );
        assert!(matches!(r, Rpc::Fault(Fault { code: 9005, .. })));
    }
}
