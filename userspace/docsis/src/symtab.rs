//! The symbol table: the name, type code and value form of every setting provd knows, as a
//! tree that mirrors the nesting of compound TLVs.
//!
//! Names follow the docsis tool's text syntax so that its files (and its decoded `.txt`
//! dumps) parse. The table decides three things: which TLVs are compound (decode), what a
//! name means in its block (parse), and how a value is shown (print). Anything it does not
//! know is still carried, as `GenericTLV`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use provd_mib::NameHasherBuilder;

/// One setting: its name in the text form, its type code inside its parent, its value form.
#[derive(Debug, Clone, Copy)]
pub struct Sym {
    pub name: &'static str,
    pub code: u8,
    pub kind: Kind,
}

/// How a setting's value is encoded and written.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Sub-TLVs, written as a `Name { ... }` block.
    Compound(&'static [Sym]),
    /// Big-endian unsigned integer of exactly `width` bytes, within `min..=max`.
    Uint {
        width: u8,
        min: u64,
        max: u64,
    },
    /// Raw bytes written `0x...`, length within `min..=max`.
    Hex {
        min: usize,
        max: usize,
    },
    /// Bytes written as a quoted string when printable, else `0x...`.
    Str,
    /// As [`Kind::Str`] with a terminating NUL on the wire (a `0x...` value is taken as is).
    StrZero,
    Ipv4,
    Ipv6,
    /// IPv4 or IPv6, by value length.
    IpAny,
    /// IPv4 addresses back to back, written comma separated.
    Ipv4List,
    /// Address and UDP port (6 or 18 bytes), written `addr/port`.
    IpPort,
    Mac,
    /// MAC address and mask (12 bytes), written `mac/mask`.
    MacMask,
    /// A BER-encoded OBJECT IDENTIFIER (tag, length, arcs).
    Oid,
    /// TLV 10: BER OID followed by one flag byte, written `oid flag`.
    SnmpWrite,
    /// A BER VarBind, written `oid Type value`. `file_oid` is the OID of the tool's
    /// `Name "file";` form, which sets that object to the file's bytes.
    VarBind {
        file_oid: Option<&'static [u32]>,
    },
    /// 16-bit integers back to back, written comma separated.
    U16List,
    /// Parse-only: `Name "file";` loads a file and emits it as TLVs of `code` of at most 254
    /// bytes each (code-verification certificates). Printing uses the hex setting of that code.
    FileChunks,
}

impl Sym {
    /// The sub-table of a compound setting.
    pub fn children(&self) -> Option<&'static [Sym]> {
        match self.kind {
            Kind::Compound(children) => Some(children),
            _ => None,
        }
    }
}

/// The setting with `code` in `table`, skipping parse-only aliases.
pub fn by_code(table: &'static [Sym], code: u8) -> Option<&'static Sym> {
    table
        .iter()
        .find(|s| s.code == code && !matches!(s.kind, Kind::FileChunks))
}

/// The setting called `name` in `table`.
pub fn by_name(table: &'static [Sym], name: &str) -> Option<&'static Sym> {
    // Every table under ROOT is in the index; a miss there (an unknown name, or a table of the
    // caller's own) gets the plain scan, which decides alike.
    NAMES
        .get(&NameKey::new(table, name))
        .copied()
        .or_else(|| scan_by_name(table, name))
}

fn scan_by_name(table: &'static [Sym], name: &str) -> Option<&'static Sym> {
    table.iter().find(|s| s.name == name)
}

/// A name in a table. The table is known by address and length: a table is a static, so this
/// names it (two tables the compiler merged hold the same symbols, so they may share a key).
#[derive(PartialEq, Eq)]
struct NameKey<'a> {
    table: usize,
    len: usize,
    name: &'a str,
}

impl<'a> NameKey<'a> {
    fn new(table: &'static [Sym], name: &'a str) -> Self {
        NameKey {
            table: table.as_ptr() as usize,
            len: table.len(),
            name,
        }
    }
}

impl Hash for NameKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Address and name tell tables apart; the length only guards equality.
        state.write_usize(self.table);
        state.write(self.name.as_bytes());
    }
}

/// (table, name) -> symbol for every table reachable from [`ROOT`], so that the parser finds a
/// setting with one hash of its name rather than string compares down a table of up to 70.
static NAMES: LazyLock<HashMap<NameKey<'static>, &'static Sym, NameHasherBuilder>> =
    LazyLock::new(|| {
        fn add(
            table: &'static [Sym],
            map: &mut HashMap<NameKey<'static>, &'static Sym, NameHasherBuilder>,
        ) {
            let Some(first) = table.first() else {
                return;
            };
            if map.contains_key(&NameKey::new(table, first.name)) {
                return; // a shared table (classifiers, VendorSpecific), already in
            }
            for sym in table {
                // The first of a name wins, as in the scan (names are unique per table).
                map.entry(NameKey::new(table, sym.name)).or_insert(sym);
            }
            for sym in table {
                if let Some(children) = sym.children() {
                    add(children, map);
                }
            }
        }
        let mut map = HashMap::default();
        add(ROOT, &mut map);
        map
    });

const fn sym(name: &'static str, code: u8, kind: Kind) -> Sym {
    Sym { name, code, kind }
}
const fn block(name: &'static str, code: u8, children: &'static [Sym]) -> Sym {
    sym(name, code, Kind::Compound(children))
}
const fn uint(name: &'static str, code: u8, width: u8) -> Sym {
    let max = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width as u32)) - 1
    };
    sym(name, code, Kind::Uint { width, min: 0, max })
}
const fn u8_(name: &'static str, code: u8) -> Sym {
    uint(name, code, 1)
}
const fn u16_(name: &'static str, code: u8) -> Sym {
    uint(name, code, 2)
}
const fn u24(name: &'static str, code: u8) -> Sym {
    uint(name, code, 3)
}
const fn u32_(name: &'static str, code: u8) -> Sym {
    uint(name, code, 4)
}
const fn hex(name: &'static str, code: u8) -> Sym {
    sym(name, code, Kind::Hex { min: 0, max: 255 })
}
const fn hexn(name: &'static str, code: u8, len: usize) -> Sym {
    sym(name, code, Kind::Hex { min: len, max: len })
}
const fn string(name: &'static str, code: u8) -> Sym {
    sym(name, code, Kind::Str)
}
const fn ip4(name: &'static str, code: u8) -> Sym {
    sym(name, code, Kind::Ipv4)
}
const fn ip6(name: &'static str, code: u8) -> Sym {
    sym(name, code, Kind::Ipv6)
}
const fn mac(name: &'static str, code: u8) -> Sym {
    sym(name, code, Kind::Mac)
}

/// OID the tool's `DigitMap "file";` sets: pktcEUERSTDMMapValue for row 1.1, as found in the
/// PacketCable 2.0 example file.
pub const DIGIT_MAP_OID: &[u32] = &[1, 3, 6, 1, 4, 1, 4491, 2, 2, 8, 2, 1, 1, 3, 1, 1, 2, 1];

/// Top level of a CM or MTA config file.
pub static ROOT: &[Sym] = &[
    u32_("DownstreamFrequency", 1),
    u8_("UpstreamChannelId", 2),
    u8_("NetworkAccess", 3),
    block("ClassOfService", 4, CLASS_OF_SERVICE),
    block("ModemCapabilities", 5, MODEM_CAPABILITIES),
    string("SwUpgradeFilename", 9),
    sym("SnmpWriteControl", 10, Kind::SnmpWrite),
    sym("SnmpMibObject", 11, Kind::VarBind { file_oid: None }),
    ip4("ModemIPAddress", 12),
    mac("CpeMacAddress", 14),
    block("BaselinePrivacy", 17, BASELINE_PRIVACY),
    u8_("MaxCPE", 18),
    u32_("TftpTimestamp", 19),
    ip4("TftpModemAddress", 20),
    ip4("SwUpgradeServer", 21),
    block("UsPacketClass", 22, CLASSIFIER),
    block("DsPacketClass", 23, CLASSIFIER),
    block("UsServiceFlow", 24, US_SERVICE_FLOW),
    block("DsServiceFlow", 25, DS_SERVICE_FLOW),
    block("PHS", 26, PHS),
    u16_("MaxClassifiers", 28),
    u8_("GlobalPrivacyEnable", 29),
    hex("MfgCVCData", 32),
    sym("ManufacturerCVC", 32, Kind::FileChunks),
    hex("CoSignerCVCData", 33),
    sym("CoSignerCVC", 33, Kind::FileChunks),
    block("SnmpV3Kickstart", 34, SNMPV3_KICKSTART),
    hexn("SubMgmtControl", 35, 3),
    sym("SubMgmtCpeTable", 36, Kind::Ipv4List),
    sym("SubMgmtFilters", 37, Kind::U16List),
    block("SnmpV3TrapReceiver", 38, SNMPV3_TRAP_RECEIVER),
    u8_("DocsisTwoEnable", 39),
    hex("TestModeEnable", 40),
    block("DsChannelList", 41, DS_CHANNEL_LIST),
    mac("MulticastMACAddress", 42),
    block("VendorSpecific", 43, VENDOR_SPECIFIC),
    block("DUTFiltering", 45, DUT_FILTERING),
    block("SNMPv1v2cCoexistenceConfig", 53, SNMPV1V2C_COEXISTENCE),
    block("SNMPv3AccessViewConfiguration", 54, SNMPV3_ACCESS_VIEW),
    u8_("SNMPCPEAccessControl", 55),
    block("ChannelAssignmentConfig", 56, CHANNEL_ASSIGNMENT),
    ip6("SwUpgradeServer6", 58),
    ip6("TftpModemAddress6", 59),
    block("UsDropPacketClass", 60, CLASSIFIER),
    hex("UsDropClassifierGroupID", 62),
    u16_("SubMgmtControl6", 63),
    sym(
        "DigitMap",
        64,
        Kind::VarBind {
            file_oid: Some(DIGIT_MAP_OID),
        },
    ),
    block("L2VPNMACAgingEncoding", 65, L2VPN_MAC_AGING),
    hex("SubMgmtCpeIPv6PrefixList", 67),
    u16_("DefaultUsTargetBuffer", 68),
    u8_("MACAddressLearningControl", 69),
    block("UsAggregateServiceFlow", 70, AGGREGATE_SERVICE_FLOW),
    block("DsAggregateServiceFlow", 71, AGGREGATE_SERVICE_FLOW),
    block(
        "MetroEthernetServiceProfile",
        72,
        METRO_ETHERNET_SERVICE_PROFILE,
    ),
    block("EnergyParameters", 74, ENERGY_PARAMETERS),
    u8_("CMUpstreamAQMDisable", 75),
    u8_("CMTSUpstreamAQMDisable", 76),
    hex("ManufacturerCVCChain", 81),
    sym("ManufacturerCVCChainFile", 81, Kind::FileChunks),
    hex("CoSignerCVCChain", 82),
    sym("CoSignerCVCChainFile", 82, Kind::FileChunks),
    block("DOCSISSyncConfigurations", 101, DOCSIS_SYNC),
    block("PTPAddressConfigurations", 102, PTP_ADDRESS),
    block("eRouter", 202, EROUTER),
    u8_("MtaConfigDelimiter", 254),
];

static CLASS_OF_SERVICE: &[Sym] = &[
    u8_("ClassID", 1),
    u32_("MaxRateDown", 2),
    u32_("MaxRateUp", 3),
    u8_("PriorityUp", 4),
    u32_("GuaranteedUp", 5),
    u16_("MaxBurstUp", 6),
    u8_("PrivacyEnable", 7),
];

static MODEM_CAPABILITIES: &[Sym] = &[
    u8_("ConcatenationSupport", 1),
    u8_("ModemDocsisVersion", 2),
    u8_("FragmentationSupport", 3),
    u8_("PHSSupport", 4),
    u8_("IGMPSupport", 5),
    u8_("BaselinePrivacySupport", 6),
    u8_("DownstreamSAIDSupport", 7),
    u8_("UpstreamSIDSupport", 8),
    u8_("OptionalFilteringSupport", 9),
    u8_("TransmitPreEqualizerTapsPerModulationInterval", 10),
    u8_("NumberofTransmitEqualizerTaps", 11),
    u8_("DCCSupport", 12),
    u16_("IPFiltersSupport", 13),
    u16_("LLCFiltersSupport", 14),
    u8_("ExpandedUnicastSIDSpace", 15),
    hexn("RangingHoldOffSupport", 16, 4),
    u8_("L2VPNCapability", 17),
    hex("L2VPNeSAFEHostCapability", 18),
    u8_("DUTFilteringSupport", 19),
    u8_("UpstreamFrequencyRangeSupport", 20),
    u8_("UpstreamSymbolRateSupport", 21),
    u8_("SelectableActiveCodeMode2Support", 22),
    u8_("CodeHoppingMode2Support", 23),
    u8_("MultipleTransmitChannelSupport", 24),
    u8_("TotalSIDClusterSupport", 27),
    u8_("SIDClustersPerServiceFlow", 28),
    u8_("MultipleReceiveChannelSupport", 29),
    u8_("TotalDownstreamServiceIDSupport", 30),
    u8_("ResequencingDownstreamServiceID", 31),
    u8_("MulticastDownstreamServiceID", 32),
    u8_("MulticastDSIDForwarding", 33),
    u8_("FrameControlTypeForwarding", 34),
    u8_("DPVCapability", 35),
    u8_("UnsolicitedGrantServiceSupport", 36),
    u8_("MAPandUCDReceiptSupport", 37),
    u16_("UpstreamDropClassifierSupport", 38),
    u8_("IPv6Support", 39),
    u8_("ExtendedUpstreamTransmitPower", 40),
];

static BASELINE_PRIVACY: &[Sym] = &[
    u32_("AuthTimeout", 1),
    u32_("ReAuthTimeout", 2),
    u32_("AuthGraceTime", 3),
    u32_("OperTimeout", 4),
    u32_("ReKeyTimeout", 5),
    u32_("TEKGraceTime", 6),
    u32_("AuthRejectTimeout", 7),
    u32_("SAMapWaitTimeout", 8),
    u32_("SAMapMaxRetries", 9),
];

/// Packet classifiers: upstream (22), downstream (23) and upstream drop (60).
static CLASSIFIER: &[Sym] = &[
    u8_("ClassifierRef", 1),
    u16_("ClassifierId", 2),
    u16_("ServiceFlowRef", 3),
    u32_("ServiceFlowId", 4),
    u8_("RulePriority", 5),
    u8_("ActivationState", 6),
    u8_("DscAction", 7),
    block("IpPacketClassifier", 9, IP_CLASSIFIER),
    block("LLCPacketClassifier", 10, LLC_CLASSIFIER),
    block("IEEE802Classifier", 11, IEEE802_CLASSIFIER),
    block("PcIPv6PacketClassification", 12, IPV6_CLASSIFIER),
    hex("PcCMIMEncoding", 13),
    block("STagCTagFrameClassification", 14, STAG_CTAG_CLASSIFIER),
    block("IEEE8021ahPacketClassification", 15, IEEE8021AH_CLASSIFIER),
    block("ICMPv4ICMPv6PacketClassification", 16, ICMP_CLASSIFIER),
    block("MPLSClassificationEncoding", 17, MPLS_CLASSIFIER),
    block("VendorSpecific", 43, VENDOR_SPECIFIC),
];

static IP_CLASSIFIER: &[Sym] = &[
    hexn("IpTos", 1, 3),
    u16_("IpProto", 2),
    ip4("IpSrcAddr", 3),
    ip4("IpSrcMask", 4),
    ip4("IpDstAddr", 5),
    ip4("IpDstMask", 6),
    u16_("SrcPortStart", 7),
    u16_("SrcPortEnd", 8),
    u16_("DstPortStart", 9),
    u16_("DstPortEnd", 10),
];

static LLC_CLASSIFIER: &[Sym] = &[
    sym("DstMacAddress", 1, Kind::MacMask),
    mac("SrcMacAddress", 2),
    hexn("EtherType", 3, 3),
];

static IEEE802_CLASSIFIER: &[Sym] = &[hexn("UserPriority", 1, 2), u16_("VlanID", 2)];

static IPV6_CLASSIFIER: &[Sym] = &[
    hexn("PcIPv6TrafficClassRangeAndMask", 1, 3),
    hexn("PcIPv6FlowLabel", 2, 4),
    u16_("PcIPv6NextHeaderType", 3),
    ip6("PcIPv6SourceAddress", 4),
    u8_("PcIPv6SourcePrefixLength", 5),
    ip6("PcIPv6DestAddress", 6),
    u8_("PcIPv6DestPrefixLength", 7),
];

static STAG_CTAG_CLASSIFIER: &[Sym] = &[
    hexn("STPID", 1, 2),
    hexn("SVID", 2, 2),
    hexn("SPCP", 3, 1),
    hexn("SDEI", 4, 1),
    hexn("CTPID", 5, 2),
    hexn("CVID", 6, 2),
    hexn("CPCP", 7, 1),
    hexn("CCFI", 8, 1),
    hexn("STCI", 9, 2),
    hexn("CTCI", 10, 2),
];

static IEEE8021AH_CLASSIFIER: &[Sym] = &[
    hexn("ITPID", 1, 2),
    hexn("ISID", 2, 3),
    hexn("ITCI", 3, 5),
    hexn("IPCP", 4, 1),
    hexn("IDEI", 5, 1),
    hexn("IUCA", 6, 1),
    hexn("BTPID", 7, 2),
    hexn("BTCI", 8, 2),
    hexn("BPCP", 9, 1),
    hexn("BDEI", 10, 1),
    hexn("BVID", 11, 2),
    mac("BDA", 12),
    mac("BSA", 13),
];

static ICMP_CLASSIFIER: &[Sym] = &[
    u8_("ICMPv4ICMPv6TypeStart", 1),
    u8_("ICMPv4ICMPv6TypeEnd", 2),
];

static MPLS_CLASSIFIER: &[Sym] = &[hexn("MPLSTCbits", 1, 1), hexn("MPLSLabel", 2, 3)];

/// Service flow settings shared by upstream (24) and downstream (25) flows; the tool names
/// the reference and identifier after the direction.
macro_rules! service_flow {
    ($reference:literal, $id:literal, $($extra:expr,)*) => {
        &[
            u16_($reference, 1),
            u32_($id, 2),
            u16_("ServiceIdentifier", 3),
            sym("ServiceClassName", 4, Kind::StrZero),
            u8_("QosParamSetType", 6),
            u8_("TrafficPriority", 7),
            u32_("MaxRateSustained", 8),
            u32_("MaxTrafficBurst", 9),
            u32_("MinReservedRate", 10),
            u16_("MinResPacketSize", 11),
            u16_("ActQosParamsTimeout", 12),
            u16_("AdmQosParamsTimeout", 13),
            u32_("PeakTrafficRate", 27),
            hexn("SfRequiredAttributeMask", 31, 4),
            hexn("SfForbiddenAttributeMask", 32, 4),
            hexn("SfAttributeAggregationRuleMask", 33, 4),
            u32_("ApplicationIdentifier", 34),
            u8_("DataRateUnitSetting", 41),
            block("VendorSpecific", 43, VENDOR_SPECIFIC),
            $($extra,)*
        ]
    };
}

static US_SERVICE_FLOW: &[Sym] = service_flow!(
    "UsServiceFlowRef",
    "UsServiceFlowId",
    u16_("MaxConcatenatedBurst", 14),
    u8_("SchedulingType", 15),
    hexn("RequestOrTxPolicy", 16, 4),
    u32_("NominalPollInterval", 17),
    u32_("ToleratedPollJitter", 18),
    u16_("UnsolicitedGrantSize", 19),
    u32_("NominalGrantInterval", 20),
    u32_("ToleratedGrantJitter", 21),
    u8_("GrantsPerInterval", 22),
    hexn("IpTosOverwrite", 23, 2),
    u32_("UnsolicitedGrantTimeReference", 24),
    u8_("MultiplierContentionReqWindow", 25),
    u8_("MultiplierBytesReq", 26),
);

static DS_SERVICE_FLOW: &[Sym] = service_flow!(
    "DsServiceFlowRef",
    "DsServiceFlowId",
    u32_("MaxDsLatency", 14),
    u8_("DownstreamResequencing", 17),
);

static PHS: &[Sym] = &[
    u8_("PHSClassifierRef", 1),
    u16_("PHSClassifierId", 2),
    u16_("PHSServiceFlowRef", 3),
    u32_("PHSServiceFlowId", 4),
    hex("PHSField", 7),
    u8_("PHSIndex", 8),
    hex("PHSMask", 9),
    u8_("PHSSize", 10),
    u8_("PHSVerify", 11),
    block("VendorSpecific", 43, VENDOR_SPECIFIC),
];

static SNMPV3_KICKSTART: &[Sym] = &[
    string("SnmpV3SecurityName", 1),
    hex("SnmpV3MgrPublicNumber", 2),
];

static SNMPV3_TRAP_RECEIVER: &[Sym] = &[
    ip4("SnmpV3TrapRxIP", 1),
    u16_("SnmpV3TrapRxPort", 2),
    u16_("SnmpV3TrapRxType", 3),
    u16_("SnmpV3TrapRxTimeout", 4),
    u16_("SnmpV3TrapRxRetries", 5),
    sym("SnmpV3TrapRxFilterOID", 6, Kind::Oid),
    string("SnmpV3TrapRxSecurityName", 7),
    ip6("SnmpV3TrapRxIPv6", 8),
];

static DS_CHANNEL_LIST: &[Sym] = &[
    block("SingleDsChannel", 1, SINGLE_DS_CHANNEL),
    block("DsFreqRange", 2, DS_FREQ_RANGE),
    u16_("DefaultScanTimeout", 3),
];

static SINGLE_DS_CHANNEL: &[Sym] = &[u16_("SingleDsTimeout", 1), u32_("SingleDsFrequency", 2)];

static DS_FREQ_RANGE: &[Sym] = &[
    u16_("DsFreqRangeTimeout", 1),
    u32_("DsFreqRangeStart", 2),
    u32_("DsFreqRangeEnd", 3),
    u32_("DsFreqRangeStepSize", 4),
];

/// TLV 43 and its sub-TLV 43 of classifiers and flows: DOCSIS extensions under CableLabs'
/// identifier, vendor data otherwise.
static VENDOR_SPECIFIC: &[Sym] = &[
    u32_("CMLoadBalancingPolicyID", 1),
    u32_("CMLoadBalancingPriority", 2),
    u32_("CMLoadBalancingGroupID", 3),
    u16_("CMRangingClassIDExtension", 4),
    block("L2VPNEncoding", 5, L2VPN_ENCODING),
    block("ExtendedCMTSMICConfiguration", 6, EXTENDED_CMTS_MIC),
    block("SAVAuthorization", 7, SAV_AUTHORIZATION),
    hexn("VendorIdentifier", 8, 3),
    string("ServiceTypeIdentifier", 11),
    block("DEMARCAutoConfiguration", 12, DEMARC_AUTO_CONFIGURATION),
];

static EXTENDED_CMTS_MIC: &[Sym] = &[
    u8_("ExtendedCMTSMICHMACType", 1),
    hex("ExtendedCMTSMICBitmap", 2),
    hex("ExplicitExtendedCMTSMICDigest", 3),
];

static SAV_AUTHORIZATION: &[Sym] = &[string("SAVGroupName", 1), hex("SAVPrefixRule", 2)];

static DEMARC_AUTO_CONFIGURATION: &[Sym] = &[
    u8_("DEMARCAutoConfigurationMode", 1),
    hex("DEMARCAutoConfigurationParameter2", 2),
    hex("DEMARCAutoConfigurationParameter3", 3),
    hex("DEMARCAutoConfigurationParameter4", 4),
];

static L2VPN_ENCODING: &[Sym] = &[
    string("VPNIdentifier", 1),
    block("NSIEncapsulation", 2, NSI_ENCAPSULATION),
    hex("eSAFEDHCPSnooping", 3),
    hex("CMInterfaceMaskCMIMSubtype", 4),
    hex("AttachmentGroupID", 5),
    hex("SourceAttachmentIndividualID", 6),
    hex("TargetAttachmentIndividualID", 7),
    u8_("IngressUserPriority", 8),
    hexn("UserPriorityRange", 9, 2),
    hex("L2VPNSADescriptorSubtype", 10),
    u8_("PseudowireType", 12),
    u8_("L2VPNMode", 13),
    block("TPIDTranslation", 14, TPID_TRANSLATION),
    block("L2CPProcessing", 15, L2CP_PROCESSING),
    u8_("DACDisableEnableConfiguration", 16),
    hex("PseudowireClass", 18),
    block("ServiceDelimiter", 19, SERVICE_DELIMITER),
    block("VirtualSwitchInstanceEncoding", 20, VIRTUAL_SWITCH_INSTANCE),
    block("BGPAttribute", 21, BGP_ATTRIBUTE),
    u8_("PseudowireSignaling", 23),
    block("SOAMSubtype", 24, SOAM),
    u24("L2VPNDSID", 26),
    block("VendorSpecificL2VPNSubtype", 43, L2VPN_VENDOR_SPECIFIC),
];

static L2VPN_VENDOR_SPECIFIC: &[Sym] = &[hexn("VendorIdentifier", 8, 3)];

static NSI_ENCAPSULATION: &[Sym] = &[
    hex("ServiceMultiplexingValueOther", 1),
    u16_("NSIEncapsulationSingleQTag", 2),
    hexn("NSIEncapsulationDualQTag", 3, 4),
    block("ServiceMultiplexingValueMPLSPW", 4, MPLS_PSEUDOWIRE),
    sym("ServiceMultiplexingValueL2TPv3Peer", 5, Kind::IpAny),
    block("IEEE8021ahEncapsulation", 6, IEEE8021AH_ENCAPSULATION),
    hexn("ServiceMultiplexingValueIEEE8021adSTPID", 8, 2),
];

static MPLS_PSEUDOWIRE: &[Sym] = &[
    u32_("MPLSPseudowireID", 1),
    sym("MPLSPeerIpAddress", 2, Kind::IpAny),
    u8_("MPLSPseudowireType", 3),
    u32_("MPLSBackupPseudowireID", 4),
    sym("MPLSBackupPeerIpAddress", 5, Kind::IpAny),
];

static IEEE8021AH_ENCAPSULATION: &[Sym] = &[
    hexn("ITCIEncapsulation", 1, 4),
    hexn("BDAEncapsulation", 2, 6),
    hexn("BTCIEncapsulation", 3, 2),
    hexn("ITPIDEncapsulation", 4, 2),
    hexn("IPCPEncapsulation", 5, 1),
    hexn("IDEIEncapsulation", 6, 1),
    hexn("IUCAEncapsulation", 7, 1),
    hexn("ISIDEncapsulation", 8, 3),
    hexn("BTPIDEncapsulation", 9, 2),
    hexn("BPCPEncapsulation", 10, 1),
    hexn("BDEIEncapsulation", 11, 1),
    hexn("BVIDEncapsulation", 12, 2),
];

static TPID_TRANSLATION: &[Sym] = &[
    hexn("UpstreamTPIDTranslation", 1, 2),
    hexn("DownstreamTPIDTranslation", 2, 2),
    hexn("UpstreamSTPIDTranslation", 3, 2),
    hexn("DownstreamSTPIDTranslation", 4, 2),
    hexn("UpstreamBTPIDTranslation", 5, 2),
    hexn("DownstreamBTPIDTranslation", 6, 2),
    hexn("UpstreamITPIDTranslation", 7, 2),
    hexn("DownstreamITPIDTranslation", 8, 2),
];

static L2CP_PROCESSING: &[Sym] = &[
    u8_("L2CPTunnelMode", 1),
    mac("L2CPDMACAddress", 2),
    mac("L2CPOverwritingDMACAddress", 3),
];

static SERVICE_DELIMITER: &[Sym] = &[
    hexn("CVIDDelimiter", 1, 2),
    hexn("SVIDDelimiter", 2, 2),
    hexn("ISIDDelimiter", 3, 3),
    hexn("BVIDDelimiter", 4, 2),
];

static VIRTUAL_SWITCH_INSTANCE: &[Sym] = &[
    hex("VPLSClass", 1),
    u8_("ETreeRole", 2),
    hexn("ETreeRootVID", 3, 2),
    hexn("ETreeLeafVID", 4, 2),
];

static BGP_ATTRIBUTE: &[Sym] = &[
    u32_("BGPVPNID", 1),
    hexn("RouteDistinguisher", 2, 8),
    hex("RouteTargetImport", 3),
    hex("RouteTargetExport", 4),
    u16_("CEIDVEID", 5),
];

static SOAM: &[Sym] = &[
    block("MEPConfiguration", 1, MEP_CONFIGURATION),
    block("RemoteMEPConfiguration", 2, REMOTE_MEP_CONFIGURATION),
    block("FaultManagementConfiguration", 3, FAULT_MANAGEMENT),
    block(
        "PerformanceManagementConfiguration",
        4,
        PERFORMANCE_MANAGEMENT,
    ),
];

static MEP_CONFIGURATION: &[Sym] = &[
    u8_("MDLevel", 1),
    string("MDName", 2),
    string("MAName", 3),
    u16_("MEPID", 4),
];

static REMOTE_MEP_CONFIGURATION: &[Sym] = &[
    u8_("RemoteMDLevel", 1),
    string("RemoteMDName", 2),
    string("RemoteMAName", 3),
    u16_("RemoteMEPID", 4),
];

static FAULT_MANAGEMENT: &[Sym] = &[
    u8_("ContinuityCheckMessages", 1),
    u8_("LoopbackFunction", 2),
    u8_("LinktraceFunction", 3),
];

static PERFORMANCE_MANAGEMENT: &[Sym] = &[
    block("FrameDelayMeasurement", 1, FRAME_DELAY_MEASUREMENT),
    block("FrameLossMeasurement", 2, FRAME_LOSS_MEASUREMENT),
];

static FRAME_DELAY_MEASUREMENT: &[Sym] = &[
    u8_("FrameDelayMeasurementEnable", 1),
    u8_("FrameDelayMeasurementOneWayTwoWay", 2),
    u16_("FrameDelayMeasurementTransmissionPeriodicity", 3),
];

static FRAME_LOSS_MEASUREMENT: &[Sym] = &[
    u8_("FrameLossMeasurementEnable", 1),
    u16_("FrameLossMeasurementTransmissionPeriodicity", 2),
];

static DUT_FILTERING: &[Sym] = &[u8_("DUTControl", 1), hex("DUTCMIM", 2)];

static SNMPV1V2C_COEXISTENCE: &[Sym] = &[
    string("SNMPv1v2cCommunityName", 1),
    block(
        "SNMPv1v2cTransportAddressAccess",
        2,
        SNMPV1V2C_TRANSPORT_ADDRESS_ACCESS,
    ),
    u8_("SNMPv1v2cAccessViewType", 3),
    string("SNMPv1v2cAccessViewName", 4),
];

static SNMPV1V2C_TRANSPORT_ADDRESS_ACCESS: &[Sym] = &[
    sym("SNMPv1v2cTransportAddress", 1, Kind::IpPort),
    sym("SNMPv1v2cTransportAddressMask", 2, Kind::IpPort),
];

static SNMPV3_ACCESS_VIEW: &[Sym] = &[
    string("SNMPv3AccessViewName", 1),
    sym("SNMPv3AccessViewSubtree", 2, Kind::Oid),
    hex("SNMPv3AccessViewMask", 3),
    u8_("SNMPv3AccessViewType", 4),
];

static CHANNEL_ASSIGNMENT: &[Sym] = &[u8_("CaTransmit", 1), u32_("CaReceive", 2)];

static L2VPN_MAC_AGING: &[Sym] = &[u8_("L2VPNMACAgingMode", 1)];

static AGGREGATE_SERVICE_FLOW: &[Sym] = &[u16_("AggregateServiceFlowRef", 1)];

static METRO_ETHERNET_SERVICE_PROFILE: &[Sym] = &[u8_("MESPRef", 1), hex("MESPName", 3)];

static ENERGY_PARAMETERS: &[Sym] = &[hex("EnergyManagementFeatureControl", 1)];

static DOCSIS_SYNC: &[Sym] = &[
    u8_("PTPMasterClockEnable", 1),
    u8_("PTPProfileConfiguration", 2),
    u8_("PTPMaxNumberofClockSlavesConfiguration", 3),
    u8_("SyncEClockEnable", 4),
];

static PTP_ADDRESS: &[Sym] = &[
    sym("PTPSourceIPAddressConfiguration", 1, Kind::IpAny),
    sym("CMTSPTPIPAddressConfiguration", 2, Kind::IpAny),
    mac("PTPDestMulticastMACAddressConfiguration", 3),
];

static EROUTER: &[Sym] = &[
    u8_("InitializationMode", 1),
    block("TR69ManagementServer", 2, TR69_MANAGEMENT_SERVER),
    u8_("InitializationModeOverride", 3),
    u16_("RATransmissionInterval", 10),
    sym("SnmpMibObject", 11, Kind::VarBind { file_oid: None }),
    u8_("TopologyModeEncoding", 42),
    block("VendorSpecific", 43, VENDOR_SPECIFIC),
    block("SNMPv1v2cCoexistenceConfig", 53, SNMPV1V2C_COEXISTENCE),
    block("SNMPv3AccessViewConfiguration", 54, SNMPV3_ACCESS_VIEW),
];

static TR69_MANAGEMENT_SERVER: &[Sym] = &[
    u8_("EnableCWMP", 1),
    string("URL", 2),
    string("Username", 3),
    string("Password", 4),
    string("ConnectionRequestUsername", 5),
    string("ConnectionRequestPassword", 6),
    u8_("ACSOverride", 7),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and codes are unique within each block, apart from the parse-only file forms that
    /// share the code of their hex setting; otherwise lookups would be ambiguous.
    #[test]
    fn names_and_codes_unique_per_block() {
        fn check(table: &'static [Sym], path: &str) {
            for (i, a) in table.iter().enumerate() {
                for b in &table[i + 1..] {
                    assert_ne!(a.name, b.name, "{path}: duplicate name");
                    let alias =
                        matches!(a.kind, Kind::FileChunks) || matches!(b.kind, Kind::FileChunks);
                    assert!(
                        a.code != b.code || alias,
                        "{path}: duplicate code {}",
                        a.code
                    );
                }
                if let Some(children) = a.children() {
                    check(children, &format!("{path}.{}", a.code));
                }
            }
        }
        check(ROOT, "");
    }

    /// The name index gives, for every setting of every table, what a scan of the table gives.
    #[test]
    fn name_index_agrees_with_the_tables() {
        fn check(table: &'static [Sym], path: &str, seen: &mut usize) {
            for sym in table {
                let found = by_name(table, sym.name).expect(sym.name);
                assert!(std::ptr::eq(found, sym), "{path}.{}", sym.name);
                assert!(NAMES.contains_key(&NameKey::new(table, sym.name)));
                *seen += 1;
                assert!(
                    by_name(table, &sym.name.to_lowercase()).is_none_or(|s| s.name != sym.name)
                );
                if let Some(children) = sym.children() {
                    check(children, &format!("{path}.{}", sym.name), seen);
                }
            }
            assert!(by_name(table, "NoSuchSetting").is_none());
            assert!(by_name(table, "").is_none());
        }
        let mut seen = 0;
        check(ROOT, "Main", &mut seen);
        assert!(seen >= NAMES.len());
        // A name of another table is not found through this one.
        assert!(by_name(ROOT, "MaxRateSustained").is_none());
        assert!(by_name(CLASSIFIER, "MaxCPE").is_none());
        // A table outside the tree still works, by scan.
        static OWN: &[Sym] = &[u8_("MaxCPE", 99), u8_("Other", 1)];
        assert_eq!(by_name(OWN, "MaxCPE").map(|s| s.code), Some(99));
        assert!(by_name(OWN, "NetworkAccess").is_none());
    }
}
