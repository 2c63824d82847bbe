"""Property-shaped policies -> rows: device configuration, compliance, app protection, enrollment,
autopilot, Windows Update, scripts, unknown; plus OMA settings, endpoint-security intents and
administrative templates, which are lists of setting-like objects.

Keys are property paths (``outOfBoxExperienceSettings/hideEULA``). Arrays of scalars are sets
(one row, sorted). Arrays of objects are keyed by a natural key field (``[ruleName=…]``,
``[name=…]``) when every item has a unique one, else by ``[n]``, the item's rank by content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tenantpilot.families import APP_CONFIGURATION
from tenantpilot.families import label as family_label
from tenantpilot.flatten.configured import is_configured
from tenantpilot.flatten.constants import (
    BLOB_KEYS,
    METADATA_KEYS,
    NATURAL_KEY_FIELDS,
    SPECIAL_KEYS,
)
from tenantpilot.flatten.rows import Ident, Row, content_rank, make_row, secret_row, unconfigured
from tenantpilot.flatten.secrets import holds_secret_value, is_secret
from tenantpilot.flatten.text import (
    clean_label,
    decode_base64_text,
    display,
    fingerprint,
    humanize,
    normalise,
    raw_json,
    scalar_type,
    set_order,
)
from tenantpilot.flatten.words import portal_words
from tenantpilot.sync.links import LINKS_NOT_READ, links_of

# keys dropped inside nested objects (volatile); top level uses METADATA_KEYS
_NESTED_VOLATILE = frozenset({"id", "createdDateTime", "lastModifiedDateTime"})
_BIND_RE = re.compile(r"\('([^']+)'\)\s*$")


def _is_meta(key: str) -> bool:
    return "@" in key or key.startswith("#")


def type_label(odata_type: str) -> str:
    """"#microsoft.graph.windows10CompliancePolicy" -> "Windows 10 compliance policy"."""
    return humanize(odata_type.rpartition(".")[2]) if odata_type else ""


class _Walker:
    """Recursive walk of JSON values into rows for one policy (a plain helper, no hierarchy)."""

    __slots__ = ("ident", "base_category", "short_type")

    def __init__(self, ident: Ident, base_category: str) -> None:
        self.ident = ident
        self.base_category = base_category
        self.short_type = ident.odata_type.rpartition(".")[2]

    def category(self, names: list[str]) -> str:
        if len(names) <= 1:
            return self.base_category
        parent = " > ".join(names[:-1])
        return f"{self.base_category} > {parent}" if self.base_category else parent

    def value(self, value: Any, key: str, sid: str, names: list[str], prop: str,
              out: list[Row], description: str = "") -> None:
        """Rows for `value` found at property path `key` (`sid` = path without selectors)."""
        if value is None:
            return
        if isinstance(value, dict):
            self.mapping(value, key, sid, names, out)
            return
        if isinstance(value, list):
            self.array(value, key, sid, names, prop, out, description)
            return
        name = " > ".join(names)
        category = self.category(names)
        if prop in BLOB_KEYS and value.__class__ is str:
            digest = fingerprint(value, BLOB_KEYS[prop])
            out.append(make_row(self.ident, key, sid, name, category, digest, raw_json(digest),
                                "fingerprint", description, digest))
            return
        if is_secret(prop, value):
            out.append(secret_row(self.ident, key, sid, name, category, description))
            return
        text = display(value)
        compare = normalise(text, prop) if value.__class__ is str else text
        if value.__class__ is str:
            text = portal_words(prop, value) or text  # shown as the portal writes it; compared on Graph's value
        row = make_row(self.ident, key, sid, name, category, text, raw_json(value), scalar_type(value),
                       description, compare)
        if not is_configured(self.ident.policy_type, self.short_type, prop, value):
            unconfigured(row)
        out.append(row)

    def mapping(self, obj: Mapping[str, Any], key: str, sid: str, names: list[str],
                out: list[Row]) -> None:
        """Rows for a nested object: one per property path (volatile keys dropped)."""
        before = len(out)
        marked = holds_secret_value(obj)  # its "value" is a secret (isEncrypted, valueState, name "password")
        for prop, value in obj.items():
            if _is_meta(prop) or prop in _NESTED_VOLATILE or value is None:
                continue
            child_key = f"{key}/{prop}" if key else prop
            child_sid = f"{sid}/{prop}" if sid else prop
            if marked and prop == "value":
                out.append(secret_row(self.ident, child_key, child_sid, " > ".join([*names, humanize(prop)]),
                                      self.category([*names, humanize(prop)]), ""))
                continue
            self.value(value, child_key, child_sid, [*names, humanize(prop)], prop, out)
        if len(out) == before:
            # a configured but empty object: keep one row so its presence is visible
            plain = {k: v for k, v in obj.items() if not _is_meta(k) and k not in _NESTED_VOLATILE}
            out.append(make_row(self.ident, key, sid, " > ".join(names), self.category(names), "",
                                raw_json(plain), "object", "", ""))

    def array(self, items: list[Any], key: str, sid: str, names: list[str], prop: str,
              out: list[Row], description: str) -> None:
        name = " > ".join(names)
        category = self.category(names)
        objects = [item for item in items if isinstance(item, dict)]
        if not objects or len(objects) != len(items):
            # a set of scalars (objects mixed in are compared as JSON text)
            if is_secret(prop, items):
                out.append(secret_row(self.ident, key, sid, name, category, description))
                return
            if prop in BLOB_KEYS:
                digests = sorted(fingerprint(item, BLOB_KEYS[prop]) for item in items)
                text = "; ".join(digests)
                out.append(make_row(self.ident, key, sid, name, category, text, raw_json(digests),
                                    "fingerprint", description, text))
                return
            raws = sorted(items, key=set_order)
            texts = [display(item) for item in raws]
            row = make_row(self.ident, key, sid, name, category, "; ".join(texts), raw_json(raws), "collection",
                           description, "; ".join(sorted(normalise(t, prop) for t in texts)))
            out.append(row if items else unconfigured(row))
            return
        field, selectors = natural_selectors(objects)
        groups: list[list[Row]] = []
        labels: list[str] = []
        for item in objects:
            sub: list[Row] = []
            rest = {k: v for k, v in item.items() if not _is_meta(k) and k not in _NESTED_VOLATILE}
            marked = holds_secret_value(item)
            if field is not None:
                label = clean_label(rest.pop(field))
                labels.append(label)
                if set(rest) == {"value"} and marked:
                    sub.append(secret_row(self.ident, "", "", "", "", ""))
                    groups.append(sub)
                    continue
                if set(rest) == {"value"} and not isinstance(rest["value"], (dict, list)):
                    # {name, value} pair: one row, the value
                    pair = rest["value"]
                    text = display(pair)
                    sub.append(make_row(self.ident, "", "", "", "", text, raw_json(pair),
                                        scalar_type(pair), "",
                                        normalise(text, prop) if pair.__class__ is str else text))
                    groups.append(sub)
                    continue
            for child_prop, child in rest.items():
                if child is None:
                    continue
                if marked and child_prop == "value":
                    sub.append(secret_row(self.ident, child_prop, child_prop, humanize(child_prop), "", ""))
                    continue
                self.value(child, child_prop, child_prop, [humanize(child_prop)], child_prop, sub)
            if not sub:
                # every field empty: the item itself is the value
                text = "" if field is None else label
                sub.append(make_row(self.ident, "", "", "", "", text,
                                    raw_json(rest if field is None else item.get(field)),
                                    "object", "", text))
            groups.append(sub)
        if field is None:
            selectors = [str(rank) for rank in content_rank(groups)]
            labels = selectors
        for selector, label, sub in zip(selectors or (), labels, groups):
            item_key = f"{key}[{selector}]"
            item_name = f"{name} [{label}]"
            for row in sub:
                rel_key = row["setting_key"]
                rel_sid = row["setting_id"]
                rel_name = row["setting_name"]
                row["setting_key"] = f"{item_key}/{rel_key}" if rel_key else item_key
                row["setting_id"] = f"{sid}/{rel_sid}" if rel_sid else sid
                row["setting_name"] = f"{item_name} > {rel_name}" if rel_name else item_name
                row["category"] = category
                if not row["description"]:
                    row["description"] = description
            out.extend(sub)


def natural_selectors(items: list[dict]) -> tuple[str | None, list[str] | None]:
    """(field, ["field=value", ...]) when every item has a unique scalar natural key."""
    for field in NATURAL_KEY_FIELDS:
        values = []
        for item in items:
            value = item.get(field)
            if value is None or isinstance(value, (dict, list, bool)) or value == "":
                break
            values.append(clean_label(value))
        else:
            if len(set(values)) == len(values):
                return field, [f"{field}={v}" for v in values]
    return None, None


def _link_target(value: Any) -> tuple[str, str] | None:
    """(id, display name) of a fetched link target, None when ``value`` is not one."""
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
        return None
    name = value.get("displayName")
    return value["id"], name if isinstance(name, str) and name.strip() else ""


def link_rows(policy: Mapping[str, Any], ident: Ident, category: str) -> tuple[list[Row], set[str]]:
    """One row per navigation link of the policy (tenantpilot/sync/links.py): the value is the linked
    profile's display name (its id when Graph gave no name), the raw value keeps the id. A link Graph
    refused to give is a row saying so. Returns the rows and the properties they cover."""
    rows: list[Row] = []
    covered: set[str] = set()
    unread = policy.get(LINKS_NOT_READ)
    for link in links_of(ident.odata_type):
        nav = link.navigation
        value = policy.get(nav)
        name = humanize(nav)
        if isinstance(unread, Mapping) and nav in unread:
            why = str(unread[nav])
            rows.append(make_row(ident, nav, nav, name, category, f"not read from Graph ({why})",
                                 raw_json(None), "unread", "", ""))
            covered.add(nav)
            continue
        items = value if isinstance(value, list) else [value] if value is not None else []
        targets = [_link_target(v) for v in items]
        if not items or any(t is None for t in targets):
            continue  # not fetched, or not a link's shape: the generic walk shows whatever it is
        pairs = sorted((t for t in targets if t is not None), key=lambda t: (t[1].casefold(), t[0]))
        shown = "; ".join(n or i for i, n in pairs)
        raw: Any = [{"id": i, "displayName": n} for i, n in pairs]
        if not link.many and len(raw) == 1:
            raw = raw[0]
        compare = "; ".join(normalise(n, nav) if n else i for i, n in pairs)
        rows.append(make_row(ident, nav, nav, name, category, shown, raw_json(raw), "link", "", compare))
        covered.add(nav)
    return rows, covered


def property_rows(policy: Mapping[str, Any], ident: Ident) -> list[Row]:
    """Every non-null, non-metadata property of a policy, plus OMA settings, apps and links."""
    walker = _Walker(ident, type_label(ident.odata_type) or family_label(ident.policy_type))
    rows, linked = link_rows(policy, ident, walker.base_category)
    for prop, value in policy.items():
        if value is None or prop in METADATA_KEYS or prop in SPECIAL_KEYS or _is_meta(prop) or prop in linked:
            continue
        walker.value(value, prop, prop, [humanize(prop)], prop, rows)
    if ident.policy_type == APP_CONFIGURATION and isinstance(policy.get("settings"), list):
        # managed-device app configuration keeps its key/value pairs in `settings` (appConfigKey,
        # appConfigKeyType, appConfigKeyValue; Graph beta appConfigurationSettingItem)
        walker.value(policy["settings"], "settings", "settings", [humanize("settings")], "settings", rows)
    oma = policy.get("omaSettings")
    if isinstance(oma, list):
        rows.extend(oma_rows(oma, ident))
    apps = policy.get("apps")
    if isinstance(apps, list):
        rows.extend(app_rows(apps, ident, walker.base_category))
    return rows


def description_row(policy: Mapping[str, Any], ident: Ident) -> Row:
    """The object's `description` as a setting row, configured even when empty: for objects whose name and
    description are all they hold (device categories), so a tenant without one differs in Compare."""
    walker = _Walker(ident, type_label(ident.odata_type) or family_label(ident.policy_type))
    rows: list[Row] = []
    walker.value(str(policy.get("description") or ""), "description", "description", [humanize("description")],
                 "description", rows)
    (row,) = rows
    row["configured"] = True
    return row


# --- OMA-URI settings -----------------------------------------------------------------------

def oma_rows(settings: list[Any], ident: Ident) -> list[Row]:
    """One row per OMA setting, keyed by its OMA-URI; encrypted values are masked."""
    rows: list[Row] = []
    for index, oma in enumerate(settings):
        if not isinstance(oma, dict):
            continue
        uri = str(oma.get("omaUri") or "").strip()
        key = uri or f"omaSettings[{index}]"
        name = clean_label(oma.get("displayName")) or uri
        description = clean_label(oma.get("description"))
        kind = str(oma.get("@odata.type") or "").rpartition(".")[2].removeprefix("omaSetting")
        value = oma.get("value")
        if holds_secret_value(oma):
            rows.append(secret_row(ident, key, uri, name, "OMA-URI", description))
            continue
        if kind == "Base64" or (oma.get("fileName") and value.__class__ is str):
            digest = fingerprint(value, 16)
            rows.append(make_row(ident, key, uri, name, "OMA-URI", digest, raw_json(digest),
                                 "fingerprint", description, digest))
            continue
        if kind == "StringXml":
            text = decode_base64_text(value)
            if text is None:
                text = display(value)
            rows.append(make_row(ident, key, uri, name, "OMA-URI", text, raw_json(value), "xml",
                                 description, normalise(text, uri)))
            continue
        text = display(value)
        value_type = {"Integer": "integer", "Boolean": "boolean", "DateTime": "datetime",
                      "FloatingPoint": "number", "String": "string"}.get(kind) or scalar_type(value)
        rows.append(make_row(ident, key, uri, name, "OMA-URI", text, raw_json(value), value_type,
                             description, normalise(text, uri) if value.__class__ is str else text))
    return rows


# --- app protection: targeted apps ---------------------------------------------------------

def _app_id(app: Mapping[str, Any]) -> str:
    ident = app.get("mobileAppIdentifier")
    if isinstance(ident, dict):
        for field in ("bundleId", "packageId", "productId", "windowsAppId"):
            if ident.get(field):
                return str(ident[field])
    for field in ("bundleId", "packageId", "productId", "appId"):
        if app.get(field):
            return str(app[field])
    return ""


def app_rows(apps: list[Any], ident: Ident, category: str) -> list[Row]:
    """Targeted apps of an app protection policy as one set row of bundle / package ids."""
    ids = sorted({_app_id(app) for app in apps if isinstance(app, dict)} - {""})
    text = "; ".join(ids)
    return [make_row(ident, "apps", "apps", "Targeted apps", category, text, raw_json(ids),
                     "collection", "", text)]


# --- endpoint security intents -------------------------------------------------------------

def _intent_names(definition_id: str, definition: Mapping[str, Any] | None) -> tuple[str, str, str]:
    base = definition_id.partition("--")[2] or definition_id
    owner, _, prop = base.rpartition("_")
    fallback = humanize(prop) if prop else definition_id
    category = humanize(owner) if owner else ""
    if definition:  # from the template's categories (categoryName is added by the sync)
        return (clean_label(definition.get("displayName")) or fallback,
                clean_label(definition.get("categoryName")) or category,
                clean_label(definition.get("description")))
    return fallback, category, ""


def intent_rows(policy: Mapping[str, Any], ident: Ident,
                definitions: Mapping[str, dict] | None) -> list[Row]:
    """Intent settings: valueJson parsed, then flattened; keyed by definitionId."""
    settings = policy.get("settings")
    if not isinstance(settings, list):
        settings = policy.get("settingsDelta")
    rows: list[Row] = []
    for index, setting in enumerate(settings if isinstance(settings, list) else ()):
        if not isinstance(setting, dict):
            continue
        definition_id = str(setting.get("definitionId") or setting.get("id") or f"settings[{index}]")
        name, category, description = _intent_names(definition_id, (definitions or {}).get(definition_id))
        if "valueJson" in setting:
            text = setting.get("valueJson")
            try:
                value = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                value = text
        else:
            value = setting.get("value")
        prop = definition_id.rpartition("_")[2]
        walker = _Walker(ident, category)
        sub: list[Row] = []
        walker.value(value, "", "", [], prop, sub, description)
        for row in sub:
            rel_key, rel_name = row["setting_key"], row["setting_name"]
            row["setting_key"] = f"{definition_id}/{rel_key}" if rel_key else definition_id
            row["setting_id"] = definition_id
            row["setting_name"] = f"{name} > {rel_name}" if rel_name else name
            row["category"] = category
            if not row["description"]:
                row["description"] = description
        rows.extend(sub)
    return rows


# --- administrative templates --------------------------------------------------------------

def _bound_id(obj: Mapping[str, Any], nav: str) -> str:
    nested = obj.get(nav)
    if isinstance(nested, dict) and nested.get("id"):
        return str(nested["id"])
    bind = obj.get(f"{nav}@odata.bind")
    if isinstance(bind, str):
        found = _BIND_RE.search(bind)
        if found:
            return found.group(1)
    return ""


def _presentation_value(pv: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(display, raw JSON, value type, compare) of one presentation value."""
    kind = str(pv.get("@odata.type") or "").rpartition(".")[2].removeprefix("groupPolicyPresentationValue")
    if "values" in pv or kind in ("List", "MultiText"):
        entries = []
        for item in pv.get("values") or ():
            if isinstance(item, dict):
                key, val = display(item.get("name")), item.get("value")
                entries.append(key if val in (None, "") else f"{key}={display(val)}")
            else:
                entries.append(display(item))
        entries.sort()
        text = "; ".join(entries)
        # tenant-specific parts (a site list naming the tenant's own domain) normalised per entry, then sorted
        return text, raw_json(entries), "collection", "; ".join(sorted(normalise(e) for e in entries))
    value = pv.get("value")
    text = display(value)
    value_type = {"Decimal": "integer", "LongDecimal": "integer", "Boolean": "boolean",
                  "Text": "string"}.get(kind) or scalar_type(value)
    return text, raw_json(value), value_type, text


def admin_template_rows(policy: Mapping[str, Any], ident: Ident) -> list[Row]:
    """One row per definitionValue (enabled state) plus one per presentationValue."""
    rows: list[Row] = []
    values = policy.get("definitionValues")
    for index, dv in enumerate(values if isinstance(values, list) else ()):
        if not isinstance(dv, dict):
            continue
        definition = dv.get("definition")
        definition = definition if isinstance(definition, dict) else {}
        definition_id = _bound_id(dv, "definition")
        display_name = clean_label(definition.get("displayName"))
        category = clean_label(definition.get("categoryPath")).lstrip("\\")
        class_type = clean_label(definition.get("classType"))
        if definition_id:
            key = definition_id
        elif display_name:
            key = "/".join(p for p in (class_type, category, display_name) if p)
        else:
            key = f"definitionValues[{index}]"
        name = display_name or key
        description = clean_label(definition.get("explainText"))
        enabled = dv.get("enabled")
        text = "Enabled" if enabled is True else "Disabled" if enabled is False else display(enabled)
        rows.append(make_row(ident, key, definition_id or key, name, category, text,
                             raw_json(enabled), "boolean", description, text))
        presentation_values = dv.get("presentationValues")
        for pv_index, pv in enumerate(presentation_values if isinstance(presentation_values, list) else ()):
            if not isinstance(pv, dict):
                continue
            presentation = pv.get("presentation")
            presentation = presentation if isinstance(presentation, dict) else {}
            presentation_id = _bound_id(pv, "presentation")
            label = clean_label(presentation.get("label"))
            selector = presentation_id or label or str(pv_index)
            text, raw, value_type, compare = _presentation_value(pv)
            if value_type == "string":  # e.g. OneDrive KFM's "Tenant ID:" holds the tenant's own id
                compare = normalise(compare, f"{label} {name}")
            rows.append(make_row(ident, f"{key}/{selector}", presentation_id or selector,
                                 label or f"{name} > value {pv_index + 1}", category, text, raw,
                                 value_type, "", compare))
    return rows
