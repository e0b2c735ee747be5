"""Word's one-file XML documents, read like a .docx: Flat OPC (`<pkg:package>`, Word 2007+ "Word XML
Document", the parts inline) and Word 2003 XML (`<w:wordDocument>`, WordprocessingML 2003, whose paragraph,
run, text and table elements are those of .docx under another namespace).

Both become a minimal .docx (corpus/formats/word.py minimal_package) of the document, its styles and core
properties, so headings and tables come out exactly as from a .docx. The XML is parsed without entities,
DTDs or network access.
"""

from __future__ import annotations

import base64

from corpus.formats.base import Extracted, FormatError
from corpus.formats.word import MAX_UNCOMPRESSED, _extract_document, _open, minimal_package

_PKG = "{http://schemas.microsoft.com/office/2006/xmlPackage}"
_W2003 = "http://schemas.microsoft.com/office/word/2003/wordml"
_W2006 = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_WX = "{http://schemas.microsoft.com/office/word/2003/auxHint}"


def _corrupt(filename: str, why: str) -> FormatError:
    return FormatError("corrupt_wordxml", filename, f"Word XML 文档无法读取：{why}", f"cannot read the Word XML document: {why}")


def _flat_opc_parts(root: object, filename: str) -> dict[str, bytes]:
    from lxml import etree

    parts: dict[str, bytes] = {}
    for part in root.iterfind(f"{_PKG}part"):  # type: ignore[attr-defined]
        name = (part.get(f"{_PKG}name") or "").lstrip("/")
        xml = part.find(f"{_PKG}xmlData")
        binary = part.find(f"{_PKG}binaryData")
        if xml is not None and len(xml):
            parts[name] = etree.tostring(xml[0], xml_declaration=True, encoding="UTF-8", standalone=True)
        elif binary is not None and binary.text:
            parts[name] = base64.b64decode(binary.text)
    if "word/document.xml" not in parts:
        raise _corrupt(filename, "没有 /word/document.xml 部件 / no /word/document.xml part")
    return parts


def _word2003_parts(root: object, filename: str) -> dict[str, bytes]:
    """The 2003 body and styles under the 2006 namespace, wx:sect / wx:sub-section wrappers unwrapped."""
    from lxml import etree

    text = etree.tostring(root, encoding="unicode").replace(_W2003, _W2006)
    new = etree.fromstring(text)
    w = "{" + _W2006 + "}"
    body = new.find(f"{w}body")
    if body is None:
        raise _corrupt(filename, "没有 w:body / no w:body")
    for wrapper in list(body.iter(f"{_WX}sect", f"{_WX}sub-section")):
        parent = wrapper.getparent()
        at = parent.index(wrapper)
        for k, child in enumerate(list(wrapper)):
            parent.insert(at + k, child)
        parent.remove(wrapper)
    doc = etree.Element(f"{w}document", nsmap={"w": _W2006})
    doc.append(body)
    parts = {"word/document.xml": etree.tostring(doc, xml_declaration=True, encoding="UTF-8", standalone=True)}
    styles = new.find(f"{w}styles")
    if styles is not None:
        parts["word/styles.xml"] = etree.tostring(styles, xml_declaration=True, encoding="UTF-8", standalone=True)
    return parts


def extract_wordxml(data: bytes, filename: str) -> Extracted:
    from lxml import etree

    if len(data) > MAX_UNCOMPRESSED:
        raise FormatError("docx_too_large", filename, f"Word XML 文档过大（上限 {MAX_UNCOMPRESSED} 字节）",
                          f"the Word XML document is too large (limit {MAX_UNCOMPRESSED} bytes)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _corrupt(filename, str(exc)) from exc
    if root.tag == f"{_PKG}package":
        parts = _flat_opc_parts(root, filename)
    elif root.tag == "{" + _W2003 + "}wordDocument":
        parts = _word2003_parts(root, filename)
    else:
        raise _corrupt(filename, f"根元素是 {root.tag} / the root element is {root.tag}")
    try:
        document = _open(minimal_package(parts))
    except Exception as exc:  # python-docx on parts that are not WordprocessingML
        raise _corrupt(filename, str(exc)) from exc
    return _extract_document(document, "wordxml")
