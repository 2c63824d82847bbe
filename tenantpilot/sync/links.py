"""Links between policies: the navigation properties through which one Intune profile names another (certificates, domain join).

Graph never returns a navigation property inline: a Wi-Fi profile's server-validation root
certificate, a SCEP profile's root certificate or a hybrid Autopilot profile's domain-join profile
is only there when fetched on its own (docs/graph-intune.md §7). This table says which Graph types
have which links; :mod:`tenantpilot.graph.policy_types` turns it into one follow-up GET per link
(``/{collection}/{id}/microsoft.graph.{type}/{navigation}?$select=id,displayName``) and the
flattener (:mod:`tenantpilot.flatten.properties`) shows each fetched link as one row whose value
is the linked profile's display name (its raw value keeps the id).

Sources: the entity types of Graph's beta metadata as Microsoft's generated beta SDK carries them
(msgraph-beta-sdk 1.66.0, ``msgraph_beta/generated/models/*.py``: every navigation property typed as a
certificate profile, a trusted root certificate or a windowsDomainJoinConfiguration, and the
classes inheriting them), matching the Graph beta resource pages' "Relationships" tables
(``intune-deviceconfig-*``, ``intune-enrollment-activedirectorywindowsautopilotdeploymentprofile``).
The type-cast route is the form those pages' API pages give, e.g.
``/deviceManagement/deviceConfigurations/{id}/microsoft.graph.macOSWiredNetworkConfiguration/
rootCertificateForServerValidation``. Not followed: ``derivedCredentialSettings`` (a tenant-wide
setting, not a profile) and Cloud PC provisioning policies' domain-join configurations (not synced).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """One navigation property of one Graph type that names another profile."""

    collection: str  # the list the policy comes from (deviceConfigurations, windowsAutopilotDeploymentProfiles)
    odata_type: str  # short @odata.type without "#microsoft.graph." (case as Graph spells it)
    navigation: str  # Graph's property name; the fetched answer is merged into the policy under it
    many: bool = False  # a collection (rootCertificatesForServerValidation), else a single entity


_DC = "deviceConfigurations"
_SERVER = "rootCertificateForServerValidation"
_SERVERS = "rootCertificatesForServerValidation"
_CLIENT = "identityCertificateForClientAuthentication"
_CLIENT_ROOT = "rootCertificateForClientValidation"
_IDENTITY = "identityCertificate"
_ROOT = "rootCertificate"


def _links(collection: str, types: tuple[str, ...], *navs: tuple[str, bool]) -> tuple[Link, ...]:
    return tuple(Link(collection, t, nav, many) for t in types for nav, many in navs)


LINKS: tuple[Link, ...] = (
    # Wi-Fi / wired with one server-validation root and a client identity certificate
    *_links(_DC, ("androidEnterpriseWiFiConfiguration", "androidForWorkEnterpriseWiFiConfiguration",
                  "androidWorkProfileEnterpriseWiFiConfiguration", "aospDeviceOwnerEnterpriseWiFiConfiguration",
                  "iosWiredNetworkConfiguration", "macOSWiredNetworkConfiguration"),
            (_SERVER, False), (_CLIENT, False)),
    # ... with a list of server-validation roots (and, on some, the older single one)
    *_links(_DC, ("iosEnterpriseWiFiConfiguration",), (_SERVERS, True), (_CLIENT, False)),
    *_links(_DC, ("macOSEnterpriseWiFiConfiguration", "androidDeviceOwnerEnterpriseWiFiConfiguration"),
            (_SERVER, False), (_SERVERS, True), (_CLIENT, False)),
    *_links(_DC, ("windowsWifiEnterpriseEAPConfiguration",), (_SERVERS, True), (_CLIENT, False), (_CLIENT_ROOT, False)),
    *_links(_DC, ("windowsWiredNetworkConfiguration",), (_SERVERS, True), (_CLIENT, False), (_CLIENT_ROOT, False),
            ("secondaryIdentityCertificateForClientAuthentication", False),
            ("secondaryRootCertificateForClientValidation", False)),
    *_links(_DC, ("windowsZtdnsConfiguration",), (_SERVERS, True), ("rootCertificatesForClientValidation", True)),
    # VPN: the identity certificate used when the authentication method is a certificate
    *_links(_DC, ("androidVpnConfiguration", "androidForWorkVpnConfiguration", "androidWorkProfileVpnConfiguration",
                  "androidDeviceOwnerVpnConfiguration", "iosVpnConfiguration", "iosikEv2VpnConfiguration",
                  "macOSVpnConfiguration", "windows10VpnConfiguration", "windowsPhone81VpnConfiguration"),
            (_IDENTITY, False)),
    # SCEP / PKCS / imported PFX: the trusted root certificate profile the issued certificate chains to
    # (declared on the android…/aosp… CertificateProfileBase types, inherited by these)
    *_links(_DC, ("androidScepCertificateProfile", "androidPkcsCertificateProfile",
                  "androidImportedPFXCertificateProfile", "androidForWorkImportedPFXCertificateProfile",
                  "androidForWorkScepCertificateProfile", "androidForWorkPkcsCertificateProfile",
                  "androidWorkProfileScepCertificateProfile", "androidWorkProfilePkcsCertificateProfile",
                  "androidDeviceOwnerScepCertificateProfile", "androidDeviceOwnerPkcsCertificateProfile",
                  "androidDeviceOwnerImportedPFXCertificateProfile",
                  "aospDeviceOwnerScepCertificateProfile", "aospDeviceOwnerPkcsCertificateProfile",
                  "iosScepCertificateProfile", "macOSScepCertificateProfile",
                  "windows81SCEPCertificateProfile", "windowsPhone81SCEPCertificateProfile"),
            (_ROOT, False)),
    # e-mail profiles and single sign-on extensions
    *_links(_DC, ("iosEasEmailProfileConfiguration",), (_IDENTITY, False), ("smimeSigningCertificate", False),
            ("smimeEncryptionCertificate", False)),
    *_links(_DC, ("androidEasEmailProfileConfiguration",), (_IDENTITY, False), ("smimeSigningCertificate", False)),
    *_links(_DC, ("androidForWorkGmailEasConfiguration", "androidForWorkNineWorkEasConfiguration",
                  "androidWorkProfileGmailEasConfiguration", "androidWorkProfileNineWorkEasConfiguration"),
            (_IDENTITY, False)),
    *_links(_DC, ("iosDeviceFeaturesConfiguration",), (_CLIENT, False), ("singleSignOnExtensionPkinitCertificate", False)),
    *_links(_DC, ("macOSDeviceFeaturesConfiguration",), ("singleSignOnExtensionPkinitCertificate", False)),
    # hybrid (Active Directory) Autopilot: the domain-join device configuration it uses
    Link("windowsAutopilotDeploymentProfiles", "activeDirectoryWindowsAutopilotDeploymentProfile",
         "domainJoinConfiguration"),
)

NAVIGATIONS: frozenset[str] = frozenset(link.navigation for link in LINKS)
LINK_FIELDS: tuple[str, ...] = ("id", "displayName")  # what a link fetch selects: enough to name it
# raw key under which a fetched policy records the links Graph refused to give (navigation -> why), so
# its rows say "not read" instead of leaving the link out as if it were not set
LINKS_NOT_READ = "@tenantpilot.linksNotRead"


def links_of(odata_type: str) -> tuple[Link, ...]:
    """The links of one @odata.type ("#microsoft.graph.iosScepCertificateProfile" or the short name)."""
    short = odata_type.rpartition(".")[2].lower()
    return tuple(link for link in LINKS if link.odata_type.lower() == short)


def is_link(odata_type: str, prop: str) -> bool:
    """Whether ``prop`` of a policy of ``odata_type`` is a link (not, e.g., a certificate blob)."""
    return any(link.navigation == prop for link in links_of(odata_type))
