// The built-in Windows pipeline: the log-source mapping SigmaHQ's own regression tests use
// (THOR's tests/thor.yml) in csq's pipeline format. Sysmon categories by Sysmon EventID,
// process_creation also from Security 4688 (with its field names), the antivirus category from
// Defender's detection events, every Windows service by its event channel.
#include "detect/pipeline.h"

namespace csq::detect {

const std::string& Pipeline::windows_default_yaml() {
  static const std::string kYaml = R"YAML(name: csq-windows
logsources:
  process_creation_1:
    logsource: {product: windows, category: process_creation}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1}
  process_creation_2:
    logsource: {product: windows, category: process_creation}
    conditions: {Channel: Security, EventID: 4688}
    fieldmappings: {Image: NewProcessName, ParentImage: ParentProcessName}
  file_change:
    logsource: {product: windows, category: file_change}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 2}
  network_connection:
    logsource: {product: windows, category: network_connection}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 3}
  sysmon_status1:
    logsource: {product: windows, category: sysmon_status}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 4}
  sysmon_status2:
    logsource: {product: windows, category: sysmon_status}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 16}
  process_terminated:
    logsource: {product: windows, category: process_termination}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 5}
  driver_loaded:
    logsource: {product: windows, category: driver_load}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 6}
  image_loaded:
    logsource: {product: windows, category: image_load}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 7}
  create_remote_thread:
    logsource: {product: windows, category: create_remote_thread}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 8}
  raw_access_thread:
    logsource: {product: windows, category: raw_access_thread}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 9}
  process_access:
    logsource: {product: windows, category: process_access}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 10}
  file_creation:
    logsource: {product: windows, category: file_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 11}
  registry_event1:
    logsource: {product: windows, category: registry_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 12}
  registry_event2:
    logsource: {product: windows, category: registry_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 13}
  registry_event3:
    logsource: {product: windows, category: registry_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 14}
  registry_add:
    logsource: {product: windows, category: registry_add}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 12, EventType: CreateKey}
  registry_delete_key:
    logsource: {product: windows, category: registry_delete}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 12, EventType: DeleteKey}
  registry_delete_value:
    logsource: {product: windows, category: registry_delete}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 12, EventType: DeleteValue}
  registry_set:
    logsource: {product: windows, category: registry_set}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 13}
  registry_rename:
    logsource: {product: windows, category: registry_rename}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 14}
  create_stream_hash:
    logsource: {product: windows, category: create_stream_hash}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 15}
  pipe_created1:
    logsource: {product: windows, category: pipe_created}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 17}
  pipe_created2:
    logsource: {product: windows, category: pipe_created}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 18}
  wmi_event1:
    logsource: {product: windows, category: wmi_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 19}
  wmi_event2:
    logsource: {product: windows, category: wmi_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 20}
  wmi_event3:
    logsource: {product: windows, category: wmi_event}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 21}
  dns_query:
    logsource: {product: windows, category: dns_query}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 22}
  file_delete:
    logsource: {product: windows, category: file_delete}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 23}
  clipboard_change:
    logsource: {product: windows, category: clipboard_change}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 24}
  process_tampering:
    logsource: {product: windows, category: process_tampering}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 25}
  file_delete_detected:
    logsource: {product: windows, category: file_delete_detected}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 26}
  file_block_executable:
    logsource: {product: windows, category: file_block_executable}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 27}
  file_block_shredding:
    logsource: {product: windows, category: file_block_shredding}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 28}
  file_executable_detected:
    logsource: {product: windows, category: file_executable_detected}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 29}
  sysmon_error:
    logsource: {product: windows, category: sysmon_error}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 255}
  ps_module:
    logsource: {product: windows, category: ps_module}
    conditions: {Channel: [Microsoft-Windows-PowerShell/Operational, PowerShellCore/Operational], EventID: 4103}
  ps_script:
    logsource: {product: windows, category: ps_script}
    conditions: {Channel: [Microsoft-Windows-PowerShell/Operational, PowerShellCore/Operational], EventID: 4104}
  ps_classic_start:
    logsource: {product: windows, category: ps_classic_start}
    conditions: {Channel: 'Windows PowerShell', EventID: 400}
  ps_classic_provider_start:
    logsource: {product: windows, category: ps_classic_provider_start}
    conditions: {Channel: 'Windows PowerShell', EventID: 600}
  ps_classic_script:
    logsource: {product: windows, category: ps_classic_script}
    conditions: {Channel: 'Windows PowerShell', EventID: 800}
  windows-application:
    logsource: {product: windows, service: application}
    conditions: {Channel: Application}
  windows-security:
    logsource: {product: windows, service: security}
    conditions: {Channel: Security}
  windows-system:
    logsource: {product: windows, service: system}
    conditions: {Channel: System}
  windows-ntlm:
    logsource: {product: windows, service: ntlm}
    conditions: {Channel: Microsoft-Windows-NTLM/Operational}
  windows-sysmon:
    logsource: {product: windows, service: sysmon}
    conditions: {Channel: Microsoft-Windows-Sysmon/Operational}
  windows-powershell:
    logsource: {product: windows, service: powershell}
    conditions: {Channel: [Microsoft-Windows-PowerShell/Operational, PowerShellCore/Operational]}
  windows-classicpowershell:
    logsource: {product: windows, service: powershell-classic}
    conditions: {Channel: 'Windows PowerShell'}
  windows-taskscheduler:
    logsource: {product: windows, service: taskscheduler}
    conditions: {Channel: Microsoft-Windows-TaskScheduler/Operational}
  windows-wmi:
    logsource: {product: windows, service: wmi}
    conditions: {Channel: Microsoft-Windows-WMI-Activity/Operational}
  windows-dhcp:
    logsource: {product: windows, service: dhcp}
    conditions: {Channel: Microsoft-Windows-DHCP-Server/Operational}
  windows-printservice-admin:
    logsource: {product: windows, service: printservice-admin}
    conditions: {Channel: Microsoft-Windows-PrintService/Admin}
  windows-smbclient-security:
    logsource: {product: windows, service: smbclient-security}
    conditions: {Channel: Microsoft-Windows-SmbClient/Security}
  windows-smbclient-connectivity:
    logsource: {product: windows, service: smbclient-connectivity}
    conditions: {Channel: Microsoft-Windows-SmbClient/Connectivity}
  windows-smbserver-connectivity:
    logsource: {product: windows, service: smbserver-connectivity}
    conditions: {Channel: Microsoft-Windows-SMBServer/Connectivity}
  windows-printservice-operational:
    logsource: {product: windows, service: printservice-operational}
    conditions: {Channel: Microsoft-Windows-PrintService/Operational}
  windows-terminalservices-localsessionmanager-operational:
    logsource: {product: windows, service: terminalservices-localsessionmanager}
    conditions: {Channel: Microsoft-Windows-TerminalServices-LocalSessionManager/Operational}
  windows-codeintegrity-operational:
    logsource: {product: windows, service: codeintegrity-operational}
    conditions: {Channel: Microsoft-Windows-CodeIntegrity/Operational}
  windows-applocker:
    logsource: {product: windows, service: applocker}
    conditions: {Channel: ['Microsoft-Windows-AppLocker/MSI and Script', 'Microsoft-Windows-AppLocker/EXE and DLL', 'Microsoft-Windows-AppLocker/Packaged app-Deployment', 'Microsoft-Windows-AppLocker/Packaged app-Execution']}
  windows-msexchange-management:
    logsource: {product: windows, service: msexchange-management}
    conditions: {Channel: 'MSExchange Management'}
  windows-defender:
    logsource: {product: windows, service: windefend}
    conditions: {Channel: 'Microsoft-Windows-Windows Defender/Operational'}
  windows-defender-antivirus-mapping:
    logsource: {category: antivirus}
    conditions: {Channel: 'Microsoft-Windows-Windows Defender/Operational', EventID: [1006, 1007, 1008, 1009, 1010, 1011, 1012, 1017, 1018, 1019, 1115, 1116]}
    fieldmappings: {Signature: ThreatName, Filename: Path}
  windows-firewall-advanced-security:
    logsource: {product: windows, service: firewall-as}
    conditions: {Channel: 'Microsoft-Windows-Windows Firewall With Advanced Security/Firewall'}
  windows-bits-client:
    logsource: {product: windows, service: bits-client}
    conditions: {Channel: Microsoft-Windows-Bits-Client/Operational}
  windows-security-mitigations:
    logsource: {product: windows, service: security-mitigations}
    conditions: {Channel: ['Microsoft-Windows-Security-Mitigations/Kernel Mode', 'Microsoft-Windows-Security-Mitigations/User Mode']}
  windows-diagnosis:
    logsource: {product: windows, service: diagnosis-scripted}
    conditions: {Channel: Microsoft-Windows-Diagnosis-Scripted/Operational}
  windows-shell-core:
    logsource: {product: windows, service: shell-core}
    conditions: {Channel: Microsoft-Windows-Shell-Core/Operational}
  windows-openssh:
    logsource: {product: windows, service: openssh}
    conditions: {Channel: OpenSSH/Operational}
  windows-ldap-debug:
    logsource: {product: windows, service: ldap}
    conditions: {Channel: Microsoft-Windows-LDAP-Client/Debug}
  windows-bitlocker:
    logsource: {product: windows, service: bitlocker}
    conditions: {Channel: 'Microsoft-Windows-BitLocker/BitLocker Management'}
  windows-vhdmp:
    logsource: {product: windows, service: vhdmp}
    conditions: {Channel: Microsoft-Windows-VHDMP/Operational}
  windows-appxdeployment-server:
    logsource: {product: windows, service: appxdeployment-server}
    conditions: {Channel: Microsoft-Windows-AppXDeploymentServer/Operational}
  windows-lsa-server:
    logsource: {product: windows, service: lsa-server}
    conditions: {Channel: Microsoft-Windows-LSA/Operational}
  windows-appxpackaging-om:
    logsource: {product: windows, service: appxpackaging-om}
    conditions: {Channel: Microsoft-Windows-AppxPackaging/Operational}
  windows-dns-client:
    logsource: {product: windows, service: dns-client}
    conditions: {Channel: 'Microsoft-Windows-DNS Client Events/Operational'}
  windows-appmodel-runtime:
    logsource: {product: windows, service: appmodel-runtime}
    conditions: {Channel: Microsoft-Windows-AppModel-Runtime/Admin}
  windows-capi2:
    logsource: {product: windows, service: capi2}
    conditions: {Channel: Microsoft-Windows-CAPI2/Operational}
  windows-certificateservicesclient-lifecycle:
    logsource: {product: windows, service: certificateservicesclient-lifecycle-system}
    conditions: {Channel: Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational}
  windows-kernel-shimengine:
    logsource: {product: windows, service: kernel-shimengine}
    conditions: {Channel: [Microsoft-Windows-Kernel-ShimEngine/Operational, Microsoft-Windows-Kernel-ShimEngine/Diagnostic]}
  windows-application-experience:
    logsource: {product: windows, service: application-experience}
    conditions: {Channel: [Microsoft-Windows-Application-Experience/Program-Telemetry, Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant]}
  windows-ntfs:
    logsource: {product: windows, service: ntfs}
    conditions: {Channel: Microsoft-Windows-Ntfs/Operational}
  windows-hyper-v-worker:
    logsource: {product: windows, service: hyper-v-worker}
    conditions: {Channel: Microsoft-Windows-Hyper-V-Worker}
  windows-kernel-event-tracing:
    logsource: {product: windows, service: kernel-event-tracing}
    conditions: {Channel: Microsoft-Windows-Kernel-EventTracing}
  windows-sense:
    logsource: {product: windows, service: sense}
    conditions: {Channel: Microsoft-Windows-SENSE/Operational}
  windows-servicebus:
    logsource: {product: windows, service: servicebus-client}
    conditions: {Channel: [Microsoft-ServiceBus-Client/Admin, Microsoft-ServiceBus-Client/Operational]}
  windows-iis-configuration:
    logsource: {product: windows, service: iis-configuration}
    conditions: {Channel: Microsoft-IIS-Configuration/Operational}
)YAML";
  return kYaml;
}

}  // namespace csq::detect
