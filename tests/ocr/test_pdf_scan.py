"""ocr.pdf: a scanned page (one image covering it) renders at its image's own pixels; a drawn page keeps the dpi rule.

PDFs are built here: by PIL (which stores an RGB image as a JPEG) and by hand (:func:`hand_pdf`: text, several
images, a Form XObject, lossless images), so no binary fixture is needed.
"""

from __future__ import annotations

import io
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr.pdf import PdfLimits, render_page, render_scale, scan_scale

ROOT = Path(__file__).resolve().parents[2]
RECEIPT = ROOT / "examples" / "receipt_en.png"  # 420 x 900 px
TEXT = b"BT /F1 18 Tf 20 100 Td (INVOICE 2025-0147  TOTAL 40.02) Tj ET\n"


def pil_pdf(image: Image.Image, resolution: float) -> bytes:
    """PIL's PDF of one image: the page is the image, ``resolution`` pixels per inch."""
    buf = io.BytesIO()
    image.save(buf, format="PDF", resolution=resolution)
    return buf.getvalue()


def image_xobject(image: Image.Image) -> bytes:
    """An image XObject's body: RGB, Flate (lossless, so a page renders to exactly the image's pixels)."""
    rgb = image.convert("RGB")
    data = zlib.compress(rgb.tobytes())
    head = (f"<< /Type /XObject /Subtype /Image /Width {rgb.width} /Height {rgb.height} /ColorSpace /DeviceRGB "
            f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n").encode()
    return head + data + b"\nendstream"


def form_xobject(content: bytes, bbox: tuple[float, ...], resources: str, matrix: str = "1 0 0 1 0 0") -> bytes:
    """A Form XObject's body drawing ``content`` with ``resources`` (e.g. ``/XObject << /Im0 6 0 R >>``)."""
    head = (f"<< /Type /XObject /Subtype /Form /BBox [{' '.join(map(str, bbox))}] /Matrix [{matrix}] "
            f"/Resources << {resources} >> /Length {len(content)} >>\nstream\n").encode()
    return head + content + b"\nendstream"


def hand_pdf(content: bytes, size: tuple[float, float] = (612, 792), xobjects: list[tuple[str, bytes]] = (),
             page_extra: str = "") -> bytes:
    """A one-page PDF: ``content`` drawn with Helvetica as /F1 and ``xobjects`` named in order (objects 6, 7...)."""
    names = " ".join(f"/{name} {6 + i} 0 R" for i, (name, _) in enumerate(xobjects))
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
              (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size[0]} {size[1]}] /Contents 4 0 R {page_extra}"
               f"/Resources << /Font << /F1 5 0 R >> /XObject << {names} >> >> >>").encode(),
              b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
              b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"] + [body for _, body in xobjects]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return bytes(out)


def placed(name: str, width: float, height: float, x: float = 0, y: float = 0) -> bytes:
    """Content drawing image ``name`` as a ``width`` x ``height`` pt rectangle at (x, y)."""
    return f"q {width} 0 0 {height} {x} {y} cm /{name} Do Q\n".encode()


def rule_shape(width_pt: float, height_pt: float) -> tuple[int, int]:
    """(height, width) a drawn page renders at: the 200 dpi / 2000 px rule (pypdfium2 rounds up)."""
    scale = render_scale(width_pt, height_pt)
    return math.ceil(height_pt * scale), math.ceil(width_pt * scale)


@pytest.fixture(scope="module")
def receipt() -> Image.Image:
    return Image.open(RECEIPT).convert("RGB")


@pytest.mark.parametrize("resolution", [72, 3000])
def test_a_pil_scan_renders_at_its_own_pixels(receipt, resolution) -> None:
    """72 dpi used to render at 934x2000 (2.2x: the detector split lines); 3000 dpi at 28x61 (nothing read)."""
    rgb = render_page(pil_pdf(receipt, resolution), 0)
    assert rgb.shape == (900, 420, 3)
    assert np.abs(rgb.astype(np.float32) - np.asarray(receipt, np.float32)).mean() < 4  # PIL stored a JPEG


def test_a_lossless_scan_renders_to_exactly_its_pixels(receipt) -> None:
    pdf = hand_pdf(placed("Im0", 210, 450), size=(210, 450), xobjects=[("Im0", image_xobject(receipt))])
    assert np.array_equal(render_page(pdf, 0), np.asarray(receipt))


def test_a_scan_over_max_side_is_capped_and_never_enlarged(receipt) -> None:
    big = Image.new("RGB", (3000, 1500), "white")  # 5 x 2.5 in at 600 dpi: the dpi rule made it 1000x500
    assert render_page(pil_pdf(big, 600), 0).shape == (1000, 2000, 3)
    assert max(render_page(pil_pdf(receipt, 72), 0, PdfLimits(max_side=600)).shape) == 600
    assert scan_scale(5.0, 100, 200) == pytest.approx(5.0, rel=1e-4)  # 1000 px: the image's own
    assert scan_scale(50.0, 100, 200) == pytest.approx(10.0, rel=1e-4)  # 10000 px -> 2000


def test_a_scan_with_a_margin_keeps_its_density(receipt) -> None:
    """The image (2 px/pt) covers 84% of the page: the page renders at 2 px/pt, margins included."""
    pdf = hand_pdf(placed("Im0", 210, 450, 10, 20), size=(220, 480), xobjects=[("Im0", image_xobject(receipt))])
    rgb = render_page(pdf, 0)
    assert rgb.shape == (960, 440, 3)
    assert np.array_equal(rgb[20:920, 20:440], np.asarray(receipt))  # 1:1 (the page's top is y = 480 pt)


def test_a_rotated_scan_page(receipt) -> None:
    pdf = hand_pdf(placed("Im0", 210, 450), size=(210, 450), xobjects=[("Im0", image_xobject(receipt))],
                   page_extra="/Rotate 90 ")
    assert render_page(pdf, 0).shape == (420, 900, 3)


def test_a_scan_inside_a_form_xobject(receipt) -> None:
    """Scanner software and page imposition wrap the image in a form: its placement is the form's times its own."""
    form = form_xobject(placed("Im0", 420, 900), (0, 0, 420, 900), "/XObject << /Im0 7 0 R >>", "0.5 0 0 0.5 0 0")
    pdf = hand_pdf(b"q 0.5 0 0 0.5 0 0 cm /Fm0 Do Q\n", size=(105, 225),
                   xobjects=[("Fm0", form), ("Im0", image_xobject(receipt))])
    assert np.array_equal(render_page(pdf, 0), np.asarray(receipt))  # 420 px on 105 pt: 4 px/pt


def test_an_invisible_text_layer_still_reads_as_a_scan(receipt) -> None:
    """A searchable scan: OCR software lays invisible text (render mode 3) over the image."""
    content = placed("Im0", 210, 450) + b"BT 3 Tr /F1 12 Tf 10 400 Td (GREENLEAF MARKET) Tj ET\n"
    pdf = hand_pdf(content, size=(210, 450), xobjects=[("Im0", image_xobject(receipt))])
    assert render_page(pdf, 0).shape == (900, 420, 3)


@pytest.mark.parametrize("size", [(612, 792), (288, 216)])
def test_a_drawn_text_page_keeps_the_dpi_rule(size) -> None:
    """Born-digital: letter renders with its longer side 2000 px, a 4x3 in page at 200 dpi (800x600)."""
    rgb = render_page(hand_pdf(TEXT, size=size), 0)
    assert rgb.shape[:2] == rule_shape(*size)
    assert (rgb < 128).any()  # the text was drawn
    if size == (288, 216):
        assert rgb.shape[:2] == (600, 800)


@pytest.mark.parametrize("case", ["visible text", "two images", "half the page", "a thumbnail", "many paths"])
def test_pages_that_are_not_one_scan_keep_the_dpi_rule(receipt, case) -> None:
    """Text over a picture, two images, an image on half the page, a small logo stretched over the page and a
    drawing over an image are drawn pages: the dpi rule, not an image's density (the receipt is 2 px/pt here)."""
    image = [("Im0", image_xobject(receipt))]
    content, xobjects = {
        "visible text": (placed("Im0", 210, 450) + TEXT, image),
        "two images": (placed("Im0", 210, 225) + placed("Im1", 210, 225, 0, 225),
                       image + [("Im1", image_xobject(receipt))]),
        "half the page": (placed("Im0", 105, 450), image),
        "a thumbnail": (placed("Im0", 210, 450), [("Im0", image_xobject(receipt.resize((84, 180))))]),
        "many paths": (placed("Im0", 210, 450) + b"".join(b"%d 10 5 5 re f\n" % (10 * i) for i in range(12)), image),
    }[case]
    assert render_page(hand_pdf(content, size=(210, 450), xobjects=xobjects), 0).shape[:2] == rule_shape(210, 450)
