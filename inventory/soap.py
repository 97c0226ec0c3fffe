"""A PropertyCollector retrieval of plain properties, decoded by the C XML parser.

pyvmomi decodes each XML element of an answer in Python (about 25 µs an element): listing
5,000 VMs with eight properties each (130,000 elements) takes it 5 s. The inventory's list
asks only for plain values (strings, numbers, booleans, enumerations, managed object
references), which ``xml.etree``'s C parser reads in a small fraction of that. The request is
pyvmomi's own (``SerializeRequest``), sent on the session's pooled connection; a fault is
decoded by pyvmomi and raised as it would raise it. A value with structure (a data object, an
array) is not plain: ``NotPlain`` tells the caller to ask pyvmomi instead.

An answer that cannot be read (not XML, cut short, an unknown managed object type, a number
that is none, larger than ``MAX_ANSWER_BYTES``, more than ``MAX_PAGES`` pages) raises
``UnreadableAnswer``, one line; ``vsphere_session`` names the vCenter in it. ``xsi:type``
values are QNames: their prefix is resolved through the answer's namespace declarations
(``v:ManagedObjectReference`` with ``xmlns:v="urn:vim25"`` is a reference, as pyvmomi reads it).
"""

from __future__ import annotations

import http.client
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from pyVmomi import SoapAdapter, VmomiSupport

from exports.pipeline.errors import UnreadableAnswer
from hypersdk.lib.units import human_size

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{_XSI}}}type"
_XSI_NIL = f"{{{_XSI}}}nil"
_XSD = "http://www.w3.org/2001/XMLSchema"
_VIM = "urn:vim25"
_NUMBERS = {(_XSD, "int"), (_XSD, "long"), (_XSD, "short"), (_XSD, "byte")}
# The largest answer read, in bytes: a page of 5,000 VMs' listing properties is about 10 MiB.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
# Pages followed before giving up on a vCenter that keeps sending a continuation token: a
# ContainerView of 1,000,000 objects, at the fewest objects per page vCenter sends (100).
MAX_PAGES = 10_000


class NotPlain(ValueError):
    """The answer holds a value this decoder does not read (a data object or an array), or the
    session is not one it can send on."""


def retrieve_plain(property_collector: Any, spec: Any, options: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Every object ``spec`` selects as (managed object, {property path: value}); pages
    followed with ContinueRetrievePropertiesEx. Values: str, int, bool, or a managed object
    (bound to the session, like pyvmomi's). Raises NotPlain, or vCenter's fault."""
    objects: list[tuple[Any, dict[str, Any]]] = []
    token = _call(property_collector, "RetrievePropertiesEx", [[spec], options], objects)
    pages = 1
    while token:
        check_pages(pages)
        token = _call(property_collector, "ContinueRetrievePropertiesEx", [token], objects)
        pages += 1
    return objects


def check_pages(pages: int) -> None:
    """Raise UnreadableAnswer when ``pages`` pages were read and vCenter still sends a token."""
    if pages >= MAX_PAGES:
        raise UnreadableAnswer(f"more than {MAX_PAGES} pages of properties (vCenter keeps sending a token)")


def _call(mo: Any, method: str, args: list[Any], into: list[tuple[Any, dict[str, Any]]]) -> str:
    """One SOAP call of ``method``; its objects appended to ``into``; the next page's token."""
    stub = mo._stub
    if not isinstance(stub, SoapAdapter.SoapStubAdapter):  # a wrapping stub: let pyvmomi call
        raise NotPlain(f"a session through {type(stub).__name__}")
    info = mo._GetMethodInfo(method)
    body = stub.SerializeRequest(mo, info, args)
    headers = {
        "Cookie": stub.cookie,
        "SOAPAction": stub.versionId,
        "Content-Type": f"text/xml; charset={SoapAdapter.XML_ENCODING}",
        **(stub._customHeaders or {}),
    }
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, body, headers)
        response = conn.getresponse()
        status, data = response.status, response.read(MAX_ANSWER_BYTES + 1)
    except (OSError, http.client.HTTPException):
        conn.close()
        stub.DropConnections()  # as pyvmomi does: the server is probably sick
        raise
    if len(data) > MAX_ANSWER_BYTES:
        conn.close()  # the rest of the answer is still unread: this connection cannot be reused
        raise UnreadableAnswer(f"an answer larger than {human_size(MAX_ANSWER_BYTES)}")
    stub.ReturnConnection(conn)
    if status == 500:
        fault = SoapAdapter.SoapResponseDeserializer(stub).Deserialize(io.BytesIO(data), info.result)
        if isinstance(fault, BaseException):
            raise fault
        raise UnreadableAnswer(f"HTTP 500 to {method} without a SOAP fault")
    if status != 200:
        raise http.client.HTTPException(f"{status} {response.reason}")
    return _decode(data, stub, into)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(data: bytes) -> tuple[ET.Element, dict[str, set[str]]]:
    """The answer's tree, and every namespace prefix it declares → the URIs bound to it
    ("" for the default namespace). Raises ET.ParseError for what is not XML."""
    namespaces: dict[str, set[str]] = {}
    events = ET.iterparse(io.BytesIO(data), events=("start-ns",))
    for _event, (prefix, uri) in events:
        namespaces.setdefault(prefix, set()).add(uri)
    return events.root, namespaces


def _decode(data: bytes, stub: Any, into: list[tuple[Any, dict[str, Any]]]) -> str:
    root, namespaces = _parse(data)
    returnval = next((e for e in root.iter() if _local(e.tag) == "returnval"), None)
    if returnval is None:  # nothing matched: vCenter answers without a returnval
        return ""
    reference = _references(stub)
    kinds: dict[str, tuple[str, str]] = {}
    token = ""
    for element in returnval:
        name = _local(element.tag)
        if name == "token":
            token = element.text or ""
        elif name == "objects":
            obj, props = None, {}
            for part in element:
                part_name = _local(part.tag)
                if part_name == "obj":
                    obj = reference(part.get("type", ""), part.text or "")
                elif part_name == "propSet":
                    path, value = "", None
                    for field in part:
                        if _local(field.tag) == "name":
                            path = field.text or ""
                        else:
                            value = _value(field, reference, namespaces, kinds)
                    props[path] = value
            if obj is None:
                raise UnreadableAnswer("an object without its managed object reference")
            into.append((obj, props))
    return token


def _kind(qname: str, namespaces: dict[str, set[str]], kinds: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """An ``xsi:type`` value (a QName) → (namespace URI, local name); made once per value.
    A prefix bound to more than one URI in the answer cannot be resolved here: NotPlain."""
    if qname not in kinds:
        prefix, _, local = qname.rpartition(":")
        uris = namespaces.get(prefix, set())
        if len(uris) != 1:
            raise NotPlain(f"the type {qname!r} (its prefix is bound {len(uris)} ways)")
        kinds[qname] = (next(iter(uris)), local)
    return kinds[qname]


def _value(
    element: ET.Element,
    reference: Callable[[str, str], Any],
    namespaces: dict[str, set[str]],
    kinds: dict[str, tuple[str, str]],
) -> Any:
    if len(element):
        raise NotPlain(f"a structured value ({element.get(_XSI_TYPE)})")
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    qname = element.get(_XSI_TYPE, "")
    text = element.text or ""
    if not qname:
        return text
    kind = _kind(qname, namespaces, kinds)
    if kind == (_VIM, "ManagedObjectReference"):
        return reference(element.get("type", ""), text)
    if kind == (_XSD, "boolean"):
        return text.strip() in ("true", "1")
    if kind in _NUMBERS:
        try:
            return int(text)
        except ValueError:
            raise UnreadableAnswer(f"{qname} value {text[:40]!r} is not a number") from None
    if kind[0] == _VIM and kind[1].startswith("ArrayOf"):
        raise NotPlain(f"an array ({qname})")
    if kind[0] not in (_VIM, _XSD):
        raise NotPlain(f"a value of a type this decoder does not know ({qname})")
    return text


def _references(stub: Any) -> Callable[[str, str], Any]:
    """Managed object type name and id → a managed object of this session (one per pair).
    Raises UnreadableAnswer for a type this API version does not have."""
    made: dict[tuple[str, str], Any] = {}
    namespace = VmomiSupport.GetWsdlNamespace(stub.version)

    def reference(kind: str, moref: str) -> Any:
        key = (kind, moref)
        if key not in made:
            try:
                made_type = VmomiSupport.GetWsdlType(namespace, kind)
            except KeyError:
                made_type = None
            if not (isinstance(made_type, type) and issubclass(made_type, VmomiSupport.ManagedObject)):
                raise UnreadableAnswer(f"a reference to an unknown managed object type {kind[:60]!r}")
            made[key] = made_type(moref, stub)
        return made[key]

    return reference
