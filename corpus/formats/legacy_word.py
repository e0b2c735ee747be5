"""Word 97–2003 binary files (.doc, an OLE2 compound file): the text through the documented piece table.

[MS-DOC]: the WordDocument stream starts with the FIB; its fcClx/lcbClx point into the table stream (0Table
or 1Table, fWhichTblStm) at the CLX, whose PlcPcd maps character positions (CPs) to pieces of the
WordDocument stream, each UTF-16LE or "compressed" 8-bit cp1252. The main document is CPs [0, ccpText).
Paragraph properties (PAPX in FKP pages, through PlcBtePapx) say which paragraph marks end a table row
(sprmPFTtp), which paragraphs lie in a table (sprmPFInTable), their outline level and list (sprmPIlfo,
sprmPIlvl), directly or through their style (the STSH, base styles under; built-in sti 1–9 are headings).
The list numbers Word draws (第一条, （一）) come from the lists (PlfLst, PlfLfo) and go before their
paragraphs (corpus/formats/numbering.py).

Special characters: \\r paragraph end, \\x07 table cell end (row end where the paragraph is a TTP),
\\x0b line break, \\x0c page or section break, \\x0e column break, \\x13 field instructions \\x14 field
result \\x15 field end (the result is kept, the instructions dropped), \\x01 \\x08 objects and pictures,
\\x02 \\x05 footnote and comment marks (dropped), \\x1e non-breaking hyphen, \\x1f optional hyphen.

olefile (BSD, pure Python) reads the compound file; the rest is below, with no system program.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass

from corpus.formats.base import Extracted, FormatError, TextBuilder
from corpus.formats.numbering import NFC_NAMES, Counter, Level
from corpus.formats.sniff import ole_damaged

_FIB_MAGIC = 0xA5EC
_MIN_NFIB = 0x00C1  # Word 97; Word 6/95 files (nFib 101–105) keep their text another way
_F_ENCRYPTED = 0x0100
_F_WHICH_TBL = 0x0200
_F_OBFUSCATED = 0x8000
_FC_LCB = 154  # FibRgFcLcbBlob: pairs (fc, lcb) of uint32 from here
_STSHF, _PLCF_BTE_PAPX, _CLX, _PLF_LST, _PLF_LFO = 1, 13, 33, 73, 74  # indexes of the pairs used
_SPRM_IN_TABLE, _SPRM_TTP, _SPRM_OUTLINE, _SPRM_ILFO, _SPRM_ILVL = 0x2416, 0x2417, 0x2640, 0x460B, 0x260A
_DROP = frozenset("\x01\x02\x03\x04\x05\x08\x1f")


@dataclass(frozen=True)
class ParaProps:
    """What the paragraph properties say of one paragraph mark."""

    in_table: bool = False
    row_end: bool = False  # the mark ends a table row (a TTP)
    level: int = 0  # heading level (outline level + 1), 0 for body text
    ilfo: int = 0  # 1-based list override: the paragraph is numbered (0: not)
    ilvl: int = 0  # its list level


@dataclass(frozen=True)
class Para:
    """One paragraph (cells empty) or one table row (cells set) of the main text; level > 0 for a heading."""

    text: str
    level: int = 0
    cells: tuple[str, ...] = ()


def _corrupt(filename: str, why_zh: str, why_en: str) -> FormatError:
    return FormatError("corrupt_doc", filename, f"Word 97–2003 文件（.doc）已损坏，无法读取：{why_zh}",
                       f"the Word 97-2003 file (.doc) is damaged and cannot be read: {why_en}")


def _u16(b: bytes, off: int) -> int:
    return int(struct.unpack_from("<H", b, off)[0])


def _u32(b: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", b, off)[0])


def _sprms(grpprl: bytes) -> dict[int, bytes]:
    """The sprm operands of a grpprl (the last one wins); stops at a malformed one."""
    out: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(grpprl):
        sprm = _u16(grpprl, i)
        i += 2
        spra = sprm >> 13
        if spra in (0, 1):
            size = 1
        elif spra in (2, 4, 5):
            size = 2
        elif spra == 3:
            size = 4
        elif spra == 7:
            size = 3
        elif sprm == 0xD608 or sprm == 0xD606:  # sprmTDefTable / sprmTDefTable10: a 2-byte length
            if i + 2 > len(grpprl):
                break
            size = _u16(grpprl, i) + 1
        elif sprm == 0xC615 and i < len(grpprl) and grpprl[i] == 255:  # sprmPChgTabs, long form
            if i + 2 > len(grpprl):
                break
            dels = grpprl[i + 1]
            adds_at = i + 2 + 4 * dels
            size = 1 + 1 + 4 * dels + 1 + 3 * (grpprl[adds_at] if adds_at < len(grpprl) else 0)
        else:
            if i >= len(grpprl):
                break
            size = grpprl[i] + 1
        out[sprm] = grpprl[i:i + size]
        i += size
    return out


class _Reader:
    def __init__(self, data: bytes, filename: str) -> None:
        import olefile

        self.filename = filename
        try:
            ole = olefile.OleFileIO(data)
        except Exception as exc:  # olefile raises OSError and others for a damaged compound file
            raise _corrupt(filename, f"OLE2 容器无法打开（{exc}）", f"cannot open the OLE2 container ({exc})") from exc
        try:
            if not ole.exists("WordDocument"):
                if ole_damaged(ole):
                    raise _corrupt(filename, "OLE2 容器不完整", "the OLE2 container is incomplete")
                raise FormatError("unsupported_content", filename,
                                  "文件内容是其他 Office 97–2003 文件，不是 Word 文档",
                                  "the content is another Office 97-2003 file, not a Word document")
            self.wd = ole.openstream("WordDocument").read()
            if len(self.wd) < _FC_LCB + 8 * (_CLX + 1):
                raise _corrupt(filename, "WordDocument 流太短", "the WordDocument stream is too short")
            if _u16(self.wd, 0) != _FIB_MAGIC:
                raise _corrupt(filename, "文件信息块标识不对", "bad FIB identifier")
            nfib, flags = _u16(self.wd, 2), _u16(self.wd, 0x0A)
            if nfib < _MIN_NFIB:
                raise FormatError("unsupported_doc_version", filename,
                                  "这是 Word 6.0/95 或更早版本的文件：请用 Word 另存为 .docx 后上传",
                                  "this is a Word 6.0/95 or older file: save it as .docx in Word and upload that")
            if flags & (_F_ENCRYPTED | _F_OBFUSCATED):
                raise FormatError("encrypted_doc", filename, "Word 文件已加密（有打开密码），无法读取",
                                  "the Word file is encrypted (password to open) and cannot be read")
            table = "1Table" if flags & _F_WHICH_TBL else "0Table"
            if not ole.exists(table):
                raise _corrupt(filename, f"缺少 {table} 流", f"no {table} stream")
            self.table = ole.openstream(table).read()
            self.title, self.author = _summary(ole)
        except FormatError:
            raise
        except Exception as exc:
            raise _corrupt(filename, str(exc), str(exc)) from exc
        finally:
            ole.close()
        self.ccp_text = _u32(self.wd, 0x4C)

    def _fclcb(self, index: int) -> tuple[int, int]:
        if index >= _u16(self.wd, _FC_LCB - 2):  # cbRgFcLcb: an older FIB has fewer pairs
            return 0, 0
        return _u32(self.wd, _FC_LCB + 8 * index), _u32(self.wd, _FC_LCB + 8 * index + 4)

    def pieces(self) -> list[tuple[int, int, int, bool]]:
        """(cp_start, cp_end, byte offset in WordDocument, compressed) for each piece."""
        fc, lcb = self._fclcb(_CLX)
        clx = self.table[fc:fc + lcb]
        if lcb == 0 or len(clx) != lcb:
            raise _corrupt(self.filename, "没有分段表", "no piece table (CLX)")
        i = 0
        while i < len(clx) and clx[i] == 0x01:  # Prc: property modifiers, skipped
            i += 3 + struct.unpack_from("<h", clx, i + 1)[0]
        if i >= len(clx) or clx[i] != 0x02 or i + 5 > len(clx):
            raise _corrupt(self.filename, "分段表格式不对", "malformed CLX")
        size = _u32(clx, i + 1)
        plc = clx[i + 5:i + 5 + size]
        n = (size - 4) // 12
        if n <= 0 or len(plc) < 4 * (n + 1) + 8 * n:
            raise _corrupt(self.filename, "分段表为空", "empty piece table")
        cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
        out = []
        for k in range(n):
            raw = _u32(plc, 4 * (n + 1) + 8 * k + 2)
            compressed = bool(raw & 0x40000000)
            fc_piece = raw & 0x3FFFFFFF
            out.append((cps[k], cps[k + 1], fc_piece // 2 if compressed else fc_piece, compressed))
        return out

    def text(self, pieces: list[tuple[int, int, int, bool]]) -> str:
        parts = []
        for cp0, cp1, off, compressed in pieces:
            if cp0 >= self.ccp_text:
                break
            n = min(cp1, self.ccp_text) - cp0
            if n <= 0:
                continue
            width = 1 if compressed else 2
            chunk = self.wd[off:off + n * width]
            if len(chunk) != n * width:
                raise _corrupt(self.filename, "文字超出文件末尾", "text runs past the end of the file")
            parts.append(chunk.decode("cp1252", "replace") if compressed else chunk.decode("utf-16-le", "replace"))
        return "".join(parts)

    def paragraph_runs(self) -> tuple[list[int], list[tuple[int, int, ParaProps]]]:
        """FKP paragraph runs sorted by start FC: (starts, [(fc_start, fc_end, properties)]). Empty when the
        file has none (the caller then guesses table rows from \\x07\\x07)."""
        fc, lcb = self._fclcb(_PLCF_BTE_PAPX)
        plc = self.table[fc:fc + lcb]
        n = (len(plc) - 4) // 8
        if n <= 0:
            return [], []
        styles = self._styles()
        runs = []
        for k in range(n):
            pn = _u32(plc, 4 * (n + 1) + 4 * k) & 0x3FFFFF
            page = self.wd[pn * 512:pn * 512 + 512]
            if len(page) != 512:
                continue
            crun = page[511]
            for r in range(crun):
                start, end = _u32(page, 4 * r), _u32(page, 4 * (r + 1))
                b_off = page[4 * (crun + 1) + 13 * r] * 2
                sprms: dict[int, bytes] = {}
                istd = 0
                if b_off and b_off < 511:
                    cb = page[b_off]
                    if cb == 0 and b_off + 1 < 511:
                        length, at = 2 * page[b_off + 1], b_off + 2
                    else:
                        length, at = 2 * cb - 1, b_off + 1
                    papx = page[at:at + length]
                    if len(papx) >= 2:
                        istd = _u16(papx, 0)
                        sprms = _sprms(papx[2:])
                runs.append((start, end, _props({**styles.get(istd, {}), **sprms})))
        runs.sort(key=lambda run: run[0])
        return [r[0] for r in runs], runs

    def _styles(self) -> dict[int, dict[int, bytes]]:
        """istd → the paragraph sprms of the style with those of its base styles under them; a built-in
        heading style (sti 1–9) as an outline level."""
        fc, lcb = self._fclcb(_STSHF)
        stsh = self.table[fc:fc + lcb]
        if len(stsh) < 6:
            return {}
        cb_stshi = _u16(stsh, 0)
        cstd, cb_base = _u16(stsh, 2), _u16(stsh, 4)
        own: dict[int, tuple[int, dict[int, bytes]]] = {}  # istd → (istdBase, own sprms)
        i = 2 + cb_stshi
        for istd in range(cstd):
            if i + 2 > len(stsh):
                break
            cb = _u16(stsh, i)
            std = stsh[i + 2:i + 2 + cb]
            i += 2 + cb
            if len(std) < max(cb_base, 10):
                continue
            sti, stk, base = _u16(std, 0) & 0x0FFF, _u16(std, 2) & 0x000F, _u16(std, 2) >> 4
            sprms: dict[int, bytes] = {}
            if 1 <= sti <= 9:
                sprms[_SPRM_OUTLINE] = bytes([sti - 1])
            at = cb_base + 2 + 2 * _u16(std, cb_base) + 2  # past xstzName (cch, chars, terminating NUL)
            at += at % 2
            if stk == 1 and at + 2 <= len(std):  # a paragraph style: its first UPX is the UpxPapx
                cb_upx = _u16(std, at)
                upx = std[at + 2:at + 2 + cb_upx]
                if len(upx) >= 2:
                    sprms = {**_sprms(upx[2:]), **sprms}
            own[istd] = (base, sprms)

        resolved: dict[int, dict[int, bytes]] = {}

        def resolve(istd: int, depth: int = 0) -> dict[int, bytes]:
            if istd in resolved:
                return resolved[istd]
            if istd not in own or depth > 20:
                return {}
            base, sprms = own[istd]
            merged = {**(resolve(base, depth + 1) if base != 0x0FFF else {}), **sprms}
            resolved[istd] = merged
            return merged

        for istd in own:
            resolve(istd)
        return resolved

    def numbering(self) -> tuple[Counter, list[str]]:
        """The lists (PlfLst and the LVLs after it) and the list of each list override (PlfLfo): ilfo - 1 →
        list id. An unreadable table gives no numbering, not an error."""
        lists: dict[str, tuple[Level, ...]] = {}
        lfo: list[str] = []
        try:
            fc, lcb = self._fclcb(_PLF_LST)
            t = self.table
            if lcb >= 2:
                count = struct.unpack_from("<h", t, fc)[0]
                at = fc + 2 + 28 * count
                for k in range(count):
                    lstf = fc + 2 + 28 * k
                    lsid = str(struct.unpack_from("<i", t, lstf)[0])
                    levels = []
                    for _ in range(1 if t[lstf + 26] & 1 else 9):
                        level, at = _lvl(t, at)
                        levels.append(level)
                    lists[lsid] = tuple(levels)
            fc, lcb = self._fclcb(_PLF_LFO)
            if lcb >= 4:
                lfo = [str(struct.unpack_from("<i", t, fc + 4 + 16 * k)[0]) for k in range(_u32(t, fc))]
        except (struct.error, IndexError, ValueError):
            return Counter({}), []
        return Counter(lists), lfo


def _lvl(t: bytes, at: int) -> tuple[Level, int]:
    """One LVL at `at` (LVLF, grpprlPapx, grpprlChpx, xst) and where the next begins."""
    start = struct.unpack_from("<i", t, at)[0]
    nfc, flags, follow = t[at + 4], t[at + 5], t[at + 15]
    cb_chpx, cb_papx = t[at + 24], t[at + 25]
    at += 28 + cb_papx + cb_chpx
    cch = _u16(t, at)
    xst = t[at + 2:at + 2 + 2 * cch].decode("utf-16-le", "replace")
    at += 2 + 2 * cch
    text = tuple(ord(ch) if ord(ch) < 9 else ch for ch in xst)
    return Level(start, NFC_NAMES.get(nfc, "decimal"), text, {0: "tab", 1: "space"}.get(follow, "nothing"),
                 bool(flags & 0x04)), at


def _props(sprms: dict[int, bytes]) -> ParaProps:
    ilfo = struct.unpack_from("<h", sprms[_SPRM_ILFO].ljust(2, b"\0"))[0] if _SPRM_ILFO in sprms else 0
    ilvl = sprms.get(_SPRM_ILVL, b"\0")[0]
    outline = sprms.get(_SPRM_OUTLINE, b"\x09")[0]
    return ParaProps(sprms.get(_SPRM_IN_TABLE, b"\0")[:1] != b"\0", sprms.get(_SPRM_TTP, b"\0")[:1] != b"\0",
                     outline + 1 if outline < 9 else 0, max(ilfo, 0), ilvl)


def _summary(ole: object) -> tuple[str, str]:
    """Title and author from the SummaryInformation stream, decoded with its code page."""
    try:
        meta = ole.get_metadata()  # type: ignore[attr-defined]
    except Exception:  # a damaged property set only loses metadata
        return "", ""
    codepage = getattr(meta, "codepage", None) or 936
    values = []
    for raw in (meta.title, meta.author):
        if isinstance(raw, bytes):
            try:
                values.append(raw.decode(f"cp{codepage}" if codepage != 65001 else "utf-8", "replace"))
            except LookupError:
                values.append(raw.decode("gb18030", "replace"))
        else:
            values.append(str(raw or ""))
    # some writers (WPS) give a string length past its end: keep up to the first NUL
    return tuple(v.split("\x00")[0].strip() for v in values)  # type: ignore[return-value]


def read_doc(data: bytes, filename: str) -> tuple[list[Para], str, str]:
    """The main text as paragraphs and table rows, with the summary's title and author."""
    reader = _Reader(data, filename)
    try:
        pieces = reader.pieces()
        text = reader.text(pieces)
        starts, runs = reader.paragraph_runs()
    except (struct.error, IndexError, ValueError) as exc:  # offsets in the FIB or tables past their ends
        raise _corrupt(filename, f"结构超出范围（{exc}）", f"a structure is out of range ({exc})") from exc
    piece_cps = [p[0] for p in pieces]
    counter, lfo = reader.numbering()

    def props(cp: int) -> ParaProps | None:
        """The properties of the paragraph whose mark is at `cp` (None when the file has none for it)."""
        if not runs:
            return None
        k = bisect.bisect_right(piece_cps, cp) - 1
        cp0, _, off, compressed = pieces[k]
        fc = off + (cp - cp0) * (1 if compressed else 2)
        j = bisect.bisect_right(starts, fc) - 1
        if j < 0 or fc >= runs[j][1]:
            return None
        return runs[j][2]

    def label(p: ParaProps) -> str:
        return counter.label(lfo[p.ilfo - 1], p.ilvl) if 0 < p.ilfo <= len(lfo) else ""

    return paragraphs(text, props, label), reader.title, reader.author


def paragraphs(text: str, props: Callable[[int], ParaProps | None],
               label: Callable[[ParaProps], str] = lambda p: "") -> list[Para]:
    """The main text's characters as paragraphs and table rows. `props(cp)`: the properties of the paragraph
    whose mark is at `cp`, or None when unknown (a \\x07 right after a \\x07 then ends the row). `label(p)`:
    the list number Word draws before a paragraph, called once per paragraph mark in order (it counts)."""
    out: list[Para] = []
    line: list[str] = []
    cell_paras: list[str] = []  # paragraphs of the table cell being read
    cells: list[str] = []
    fields: list[bool] = []  # one entry per open field: True while in its instructions
    prev = ""

    def take() -> str:
        s = "".join(line)
        line.clear()
        return "\n".join(ln.strip() for ln in s.split("\n") if ln.strip())

    for cp, ch in enumerate(text):
        if ch == "\x13":
            fields.append(True)
        elif ch == "\x14":
            if fields:
                fields[-1] = False
        elif ch == "\x15":
            if fields:
                fields.pop()
        elif ch in "\r\x0c\x0e":
            p = props(cp) if ch == "\r" else None
            para = take()
            number = label(p) if p is not None and p.ilfo else ""
            para = number + para if para else ""
            if p is not None and p.in_table:  # a paragraph inside a table cell
                if para:
                    cell_paras.append(" ".join(para.split()))
            elif para:
                out.append(Para(para, p.level if p is not None else 0))
        elif ch == "\x07":
            p = props(cp)
            row_end = p.row_end if p is not None else prev == "\x07"
            para = take()
            if p is not None and p.ilfo and not row_end:
                number = label(p)
                para = number + para if para else ""
            if para:
                cell_paras.append(" ".join(para.split()))
            if row_end:
                if cells:
                    out.append(Para(" | ".join(cells), 0, tuple(cells)))
                cells = []
            else:
                cell = " ".join(cell_paras)
                if cell and (not cells or cells[-1] != cell):
                    cells.append(cell)
            cell_paras = []
        elif any(fields) or ch in _DROP:
            pass
        elif ch == "\x0b":
            line.append("\n")
        elif ch == "\x1e":
            line.append("-")
        elif ch < " " and ch != "\t":
            pass
        else:
            line.append(ch)
        prev = ch
    para = take()
    if para:
        out.append(Para(para))
    if cells:
        out.append(Para(" | ".join(cells), 0, tuple(cells)))
    return out


def extract_doc(data: bytes, filename: str) -> Extracted:
    paras, title, author = read_doc(data, filename)
    b = TextBuilder()
    first_heading = ""
    for p in paras:
        if p.level:
            first_heading = first_heading or p.text
            b.heading(p.text, p.level)
        else:
            b.block([(p.text, None)])
    metadata: dict[str, str] = {}
    title = title or first_heading
    if title:
        metadata["title"] = title
    if author and author not in ("Administrator", "User", "微软用户"):
        metadata["author"] = author
    return b.build("doc", metadata)
