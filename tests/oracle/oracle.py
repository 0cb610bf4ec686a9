#!/usr/bin/python3
"""The project's PyTorch oracle: it writes every golden the tests read.

The definitions are those of the shared executable specification
(../shared/reference/reference.py, see ../shared/README.md), written again here
as our own small script: SqueezeNet 1.1's feature layers (Caffe's BGR input,
mean removed; ceil-mode 3x3 stride-2 pooling, max or average over the window's
elements inside the input), Gram matrices F.F^T / (C.H.W), the content, style
and TV losses, Adam on the pixels with a clamp to valid pixels after every
step, guided Gram matrices for spatial control (Gatys et al. 2017), and the
original-colours transfer (BT.601 YUV).

The inputs are the committed images of examples/ (public domain or CC0, see
examples/LICENSE.md), at sizes small enough to commit; odd sizes make the
pools clip their last windows (ceil mode).

    /usr/bin/python3 tests/oracle/oracle.py goldens

writes tests/goldens/{forward,backward,adam20,avgpool,masked}.safetensors,
tests/goldens/masked_run.json and
tests/fixtures/image/colors_reference.json and, where the shared reference
data exists ($STYLIZE_SHARED, else ../shared), tests/goldens/crosscheck.json:
these definitions applied to the shared goldens' own inputs, which
tests/oracle_test.ts compares with the shared goldens (within 1e-6), so that
neither set can drift from the other. Needs Debian's python3-torch,
python3-scipy and python3-pil (apt-get install -y python3-torch python3-scipy
python3-pil), and the weights: --weights, $STYLIZE_WEIGHTS, the shared copy,
or the CLI's cache (`deno task weights`).
"""
import argparse, base64, hashlib, json, math, os, struct, sys
import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
GOLDENS = os.path.join(REPO, "tests", "goldens")
EXAMPLES = os.path.join(REPO, "examples")
WEIGHTS_SIZE = 2894704
WEIGHTS_SHA256 = "1bb1685c050e78053830d0c70a813479952e0c6fa5f334118cd0a93fb8acd166"

MEAN = torch.tensor([104.006, 116.669, 122.679]).view(1, 3, 1, 1)  # B, G, R
LO, HI = -MEAN, 255.0 - MEAN
# fire module: name, squeeze channels, expand channels (each of 1x1 and 3x3)
FIRES = [("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), ("fire5", 32, 128),
         ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256)]
TAPS = ["conv1"] + [f[0] for f in FIRES]
POOLED = ("fire2", "fire4", "fire6")  # a pooling comes before each of these
CONFIG = dict(content_layer="fire2", content_weight=2e-5,
              style_layers=["conv1", "fire3", "fire4", "fire5"],
              style_weights=[5e-2, 1.5e-3, 3e-5, 3e-6],
              tv_weight=6e-6, lr=10.0, decay_at=180, decay_lr=1.0)


# ------------------------------------------------------------------ network

def find_weights(arg):
    shared = shared_dir()
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for p in (arg, os.environ.get("STYLIZE_WEIGHTS"),
              shared and os.path.join(shared, "weights", "sqz_notop.mat"),
              os.environ.get("STYLIZE_CACHE_DIR") and
              os.path.join(os.environ["STYLIZE_CACHE_DIR"], "sqz_notop.mat"),
              os.path.join(home, "stylize", "sqz_notop.mat")):
        if p and os.path.isfile(p):
            data = open(p, "rb").read()
            if len(data) != WEIGHTS_SIZE or hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256:
                sys.exit(f"oracle: {p} is not sqz_notop.mat (size or sha256)")
            return p
    sys.exit("oracle: no weights: pass --weights PATH or set STYLIZE_WEIGHTS to sqz_notop.mat")


def weights(path):
    """name -> (kernel OIHW, bias); the MAT-file holds {kernel HWIO, bias} per layer."""
    out = {}
    for name, cell in scipy.io.loadmat(path).items():
        if name.startswith("__"):
            continue
        k, b = cell[0]
        out[name] = (torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))).float(),
                     torch.from_numpy(b.reshape(-1).copy()).float())
    return out


def pool(x, kind):
    """3x3 stride 2, ceil mode; "avg" divides by the window's elements inside the input."""
    if kind == "max":
        return F.max_pool2d(x, 3, 2, ceil_mode=True)
    return F.avg_pool2d(x, 3, 2, ceil_mode=True)


def conv(x, w, name, **kw):
    k, b = w[name]
    return F.relu(F.conv2d(x, k, b, **kw))


def features(x, w, upto="fire9", pooling="max"):
    """Taps conv1 ... upto (post-ReLU) of a preprocessed (1,3,H,W) image."""
    x = conv(x, w, "conv1", stride=2)
    taps = {"conv1": x}
    for name, _, _ in FIRES:
        if TAPS.index(name) > TAPS.index(upto):
            break
        if name in POOLED:
            x = pool(x, pooling)
        s = conv(x, w, name + "/squeeze1x1")
        x = torch.cat([conv(s, w, name + "/expand1x1"), conv(s, w, name + "/expand3x3", padding=1)], 1)
        taps[name] = x
    return taps


def deepest(cfg):
    return max([cfg["content_layer"]] + cfg["style_layers"], key=TAPS.index)


# ------------------------------------------------------------------ losses

def gram(f):
    _, c, h, wd = f.shape
    m = f.reshape(c, h * wd)
    return m @ m.t() / (c * h * wd)


def guide(mask, tap):
    """A (1,1,H,W) mask at a tap's resolution: conv1's window as a 3x3 stride-2 mean
    (no padding), each pooling before the tap as the ceil-mode in-bounds mean."""
    m = F.avg_pool2d(mask, 3, 2)
    for name in POOLED:
        if TAPS.index(name) <= TAPS.index(tap):
            m = pool(m, "avg")
    return m


def gram_guided(f, m):
    """(F.m)(F.m)^T / (C.sum(m^2)); None where sum(m^2) is 0."""
    _, c, h, wd = f.shape
    s = (m * m).sum()
    if float(s) == 0.0:
        return None
    g = (f * m).reshape(c, h * wd)
    return g @ g.t() / (c * s)


def content_loss(cfg, taps, target):
    return cfg["content_weight"] * ((taps[cfg["content_layer"]] - target) ** 2).sum()


def style_loss(cfg, taps, targets, only=None):
    total = 0
    for l, wl, a in zip(cfg["style_layers"], cfg["style_weights"], targets):
        if only is None or l == only:
            total = total + wl * ((gram(taps[l]) - a) ** 2).sum()
    return total


def style_loss_masked(cfg, taps, regions):
    """regions: [(mask, [target Gram per style layer])], each style in its own region."""
    total = 0
    for i, (l, wl) in enumerate(zip(cfg["style_layers"], cfg["style_weights"])):
        for mask, targets in regions:
            g = gram_guided(taps[l], guide(mask, l))
            if g is not None:
                total = total + wl * ((g - targets[i]) ** 2).sum()
    return total


def tv_loss(cfg, x):
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return cfg["tv_weight"] * ((dh ** 2).sum() + (dw ** 2).sum())


def value_and_grad(fn, x):
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x)
    loss.backward()
    return torch.tensor([float(loss)]), x.grad.detach()


def adam(content, targets, iters, cfg, w, regions=None):
    """Adam on the pixels from the content image, clamped to valid pixels after each
    step; the rate drops to decay_lr at decay_at. With regions ([(mask, [target Gram per
    style layer])]), the masked style loss instead of the plain one against `targets`.
    Returns (x, losses)."""
    upto = deepest(cfg)
    with torch.no_grad():
        p = features(content, w, upto)[cfg["content_layer"]]
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=cfg["lr"])
    losses = []
    for t in range(iters):
        if t == cfg["decay_at"]:
            for g in opt.param_groups:
                g["lr"] = cfg["decay_lr"]
        opt.zero_grad()
        taps = features(x, w, upto)
        style = (style_loss(cfg, taps, targets) if regions is None
                 else style_loss_masked(cfg, taps, regions))
        loss = content_loss(cfg, taps, p) + style + tv_loss(cfg, x)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.copy_(torch.max(torch.min(x, HI), LO))
        losses.append(float(loss))
    return x.detach(), losses


def style_grams(style, cfg, w):
    with torch.no_grad():
        taps = features(style, w, deepest(cfg))
        return [gram(taps[l]) for l in cfg["style_layers"]]


# ------------------------------------------------------------------ images

def preprocess(rgb):
    """(H,W,3) uint8 RGB -> (1,3,H,W) BGR, 0..255 minus the mean."""
    a = torch.from_numpy(np.asarray(rgb, dtype=np.float32)).permute(2, 0, 1)[[2, 1, 0]][None]
    return a - MEAN


def image(path, shorter=None, size=None):
    """A file as a network input: resized (Pillow's bicubic) to `size` (w, h), or so that
    its shorter side is `shorter`."""
    im = Image.open(path).convert("RGB")
    if size is None:
        s = shorter / min(im.size)
        size = (max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s)))
    return preprocess(im.resize(size, Image.BICUBIC))


def load_mask(path, wd, h):
    """A mask file -> (1,1,h,wd) in [0, 1]: its luminance (Pillow's "L"), resized with
    Pillow's bicubic filter, divided by 255."""
    im = Image.open(path).convert("L").resize((wd, h), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)[None, None]


def yuv(a):
    m = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return a @ m.T


def rgb(a):
    m = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])
    return a @ m.T


def original_colors(stylised, content):
    """Y of the stylised image with U, V of the content (uint8 RGB arrays), rounded."""
    y = yuv(stylised.astype(np.float64))[..., :1]
    uv = yuv(content.astype(np.float64))[..., 1:]
    return np.clip(np.rint(rgb(np.concatenate([y, uv], -1))), 0, 255).astype(np.uint8)


def lcg_noise(w, h, seed):
    """The LCG bytes of tests/image_test.ts's colour test, as (h, w, 3)."""
    out = bytearray()
    s = seed
    for _ in range(w * h * 3):
        s = (s * 1103515245 + 12345) % 2147483648
        out.append((s >> 16) & 255)
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(h, w, 3)


# ------------------------------------------------------------------ files

def save(path, tensors, meta):
    """safetensors: 8-byte LE header length, JSON header, raw little-endian F32."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().numpy() if torch.is_tensor(t) else t, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)")


def load(path):
    """Every F32 tensor of a safetensors file, and its metadata."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").copy()
                                     .reshape(t["shape"]))
    return out, meta


def shared_dir():
    d = os.environ.get("STYLIZE_SHARED") or os.path.join(REPO, "..", "shared")
    return os.path.abspath(d) if os.path.isdir(d) else None


# ------------------------------------------------------------------ goldens

def masks(h, wd):
    """A soft vertical edge (left) and a hard disk, over an h x wd image."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(wd, dtype=torch.float32), indexing="ij")
    left = ((wd * 0.6 - xx) / 12.0).clamp(0, 1)[None, None]
    disk = (((yy - h * 0.4) ** 2 + (xx - wd * 0.75) ** 2) < (h * 0.3) ** 2).float()[None, None]
    return {"left": left, "disk": disk}


def backward_terms(cfg, w, x0, p, targets):
    """loss/<term> and grad/<term> at x0 for content, style, each style layer, tv, total."""
    upto = deepest(cfg)
    terms = {
        "content": lambda x: content_loss(cfg, features(x, w, upto), p),
        "style": lambda x: style_loss(cfg, features(x, w, upto), targets),
        "tv": lambda x: tv_loss(cfg, x),
    }
    for l in cfg["style_layers"]:
        terms[f"style/{l}"] = (lambda l: lambda x: style_loss(cfg, features(x, w, upto), targets, l))(l)
    terms["total"] = lambda x: (lambda f: content_loss(cfg, f, p) + style_loss(cfg, f, targets)
                                + tv_loss(cfg, x))(features(x, w, upto))
    out = {}
    for name, fn in terms.items():
        out[f"loss/{name}"], out[f"grad/{name}"] = value_and_grad(fn, x0)
    return out


def masked_terms(cfg, w, x0, mask_of, targets_of):
    """guide/*, gram_target/*, gram_guided/left/*, loss and grad of style_masked."""
    t = {}
    upto = deepest(cfg)
    for m in mask_of:
        t[f"mask/{m}"] = mask_of[m]
        for l, a in zip(cfg["style_layers"], targets_of[m]):
            t[f"gram_target/{m}/{l}"] = a
            t[f"guide/{m}/{l}"] = guide(mask_of[m], l)
    regions = [(mask_of[m], targets_of[m]) for m in mask_of]
    t["loss/style_masked"], t["grad/style_masked"] = value_and_grad(
        lambda x: style_loss_masked(cfg, features(x, w, upto), regions), x0)
    with torch.no_grad():
        taps = features(x0, w, upto)
        for l in cfg["style_layers"]:
            t[f"gram_guided/left/{l}"] = gram_guided(taps[l], guide(mask_of["left"], l))
    return t


# The inputs: Chelsea the cat (content) and The Starry Night / the Hubble Deep Field (styles).
CONTENT = "chelsea.png"
STYLE = "starry_night.jpg"
STYLE2 = "hubble_deep_field.jpg"
# Sizes: odd, and such that the pools' inputs have even sides, where ceil mode clips the last
# window. The forward goldens' photo, 33x65: conv1 16x32, pool1 8x16, pool3 4x8, pool5 2x4 (every
# pool clips on both sides). The loss goldens' content, 45x67: conv1 22x33 (pool1 clips along the
# height), pool1 11x16 (pool3 clips along the width).
PHOTO_SIZE = (65, 33)
CONTENT_SIZE = (67, 45)
STYLE_SHORTER = 64


def make_goldens(w, out):
    torch.manual_seed(1234)
    cfg = CONFIG
    files = {}
    # forward: a photo and odd-sized noise, every tap
    photo = image(os.path.join(EXAMPLES, CONTENT), size=PHOTO_SIZE)
    noise = torch.rand(1, 3, 67, 45) * 255.0 - MEAN
    t = {}
    with torch.no_grad():
        for tag, x in (("photo", photo), ("noise", noise)):
            t[f"{tag}/input"] = x
            for k, v in features(x, w).items():
                t[f"{tag}/{k}"] = v
    files["forward"] = (t, {"note": "preprocessed BGR inputs (NCHW); post-ReLU taps",
                            "photo": f"{CONTENT} at {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}",
                            "noise": "uniform over valid pixels, torch seed 1234"})
    # avgpool: the photo's taps with average pooling
    with torch.no_grad():
        t = {f"photo/{k}": v for k, v in features(photo, w, pooling="avg").items()}
    files["avgpool"] = (t, {"note": "forward's photo/input with average pooling"})
    # backward: each loss term and its gradient at a noisy content image
    content = image(os.path.join(EXAMPLES, CONTENT), size=CONTENT_SIZE)
    style = image(os.path.join(EXAMPLES, STYLE), shorter=STYLE_SHORTER)
    x0 = torch.max(torch.min(content + torch.randn(content.shape) * 20.0, HI), LO)
    with torch.no_grad():
        p = features(content, w, deepest(cfg))[cfg["content_layer"]]
    targets = style_grams(style, cfg, w)
    t = {"x": x0, "content": content, "style": style, "content_target": p}
    t.update({f"gram_target/{l}": a for l, a in zip(cfg["style_layers"], targets)})
    t.update(backward_terms(cfg, w, x0, p, targets))
    files["backward"] = (t, {"config": json.dumps(cfg), "note": "loss/* scalars, grad/* d loss / d x",
                             "content": f"{CONTENT} at {CONTENT_SIZE[0]}x{CONTENT_SIZE[1]}",
                             "style": f"{STYLE} at {STYLE_SHORTER} (shorter side)"})
    # adam20: 20 Adam steps from the content image
    x, losses = adam(content, targets, 20, cfg, w)
    files["adam20"] = ({"content": content, "style": style, "losses": torch.tensor(losses),
                        "x_final": x}, {"config": json.dumps(cfg), "iters": 20, "init": "content"})
    # masked: two styles, each in its own region of backward's x
    style2 = image(os.path.join(EXAMPLES, STYLE2), shorter=STYLE_SHORTER)
    mask_of = masks(*content.shape[2:])
    t = {"x": x0}
    t.update(masked_terms(cfg, w, x0, mask_of, {"left": targets, "disk": style_grams(style2, cfg, w)}))
    files["masked"] = (t, {"config": json.dumps(cfg),
                           "styles": f"left: {STYLE} at {STYLE_SHORTER}, disk: {STYLE2} at {STYLE_SHORTER}",
                           "note": "x is backward's x; guide/* are the masks carried to each layer"})
    shas = {}
    for name, (tensors, meta) in files.items():
        path = os.path.join(out, f"{name}.safetensors")
        save(path, tensors, meta)
        shas[name] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return shas


def make_masked_run(w):
    """tests/goldens/masked_run.json: the masked Adam loop on the bundled images (Chelsea at
    96x64, The Starry Night where examples/chelsea_background.png is light, the Hubble Deep
    Field where examples/chelsea_cat.png is; each style 96 px on its longer side), 30
    iterations with the rate dropping at 27: the losses tests/cli_masks_test.ts's
    --style-masks run must land on."""
    ex = os.path.join(REPO, "examples")
    content = image(os.path.join(ex, "chelsea.png"), shorter=64)
    styles = [image(os.path.join(ex, "starry_night.jpg"), shorter=60),
              image(os.path.join(ex, "hubble_deep_field.jpg"), shorter=84)]
    _, _, h, wd = content.shape
    masks = [load_mask(os.path.join(ex, n), wd, h)
             for n in ("chelsea_background.png", "chelsea_cat.png")]
    cfg = dict(CONFIG, decay_at=27)
    regions = [(m, style_grams(s, cfg, w)) for m, s in zip(masks, styles)]
    _, losses = adam(content, None, 30, cfg, w, regions=regions)
    path = os.path.join(GOLDENS, "masked_run.json")
    with open(path, "w") as f:
        json.dump({"size": [h, wd], "styleShapes": [list(s.shape) for s in styles], "iters": 30,
                   "decayAt": 27, "config": cfg, "losses": losses}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, REPO)}")


def make_colors_fixture():
    """colors_reference.json: original_colors of two LCG noise images (tests/image_test.ts)."""
    W, H = 29, 17
    out = original_colors(lcg_noise(W, H, 1), lcg_noise(W, H, 2))
    path = os.path.join(REPO, "tests", "fixtures", "image", "colors_reference.json")
    with open(path, "w") as f:  # laid out as deno fmt lays it out
        f.write(f'{{\n  "width": {W},\n  "height": {H},\n  "seeds": [1, 2],\n  "expected": '
                f'"{base64.b64encode(out.tobytes()).decode()}"\n}}\n')
    print(f"wrote {os.path.relpath(path, REPO)}")


# ------------------------------------------------------------------ cross-check

def pattern(n):
    """Fixed weights for the dot statistic: ((i * 7919) mod 1009) / 1009 - 0.5."""
    return ((np.arange(n, dtype=np.int64) * 7919) % 1009) / 1009.0 - 0.5


def stats(t):
    """What tests/oracle_test.ts recomputes from the shared tensor of the same name."""
    a = (t.detach().numpy() if torch.is_tensor(t) else np.asarray(t)).astype(np.float32)
    a = a.reshape(-1).astype(np.float64)
    n = a.size
    s = {"n": n, "sum": float(a.sum()), "abs": float(np.abs(a).sum()),
         "l2": float(math.sqrt((a * a).sum())), "dot": float((a * pattern(n)).sum())}
    if n <= 64:
        s["values"] = [float(v) for v in a]
    return s


def crosscheck(w, shared, shas):
    """Our definitions on the shared goldens' own inputs: statistics of every output."""
    ref = os.path.join(shared, "reference")
    cfg = CONFIG
    entries = {}

    def put(file, name, t):
        entries.setdefault(file, {})[name] = stats(t)

    fwd, _ = load(os.path.join(ref, "forward.safetensors"))
    with torch.no_grad():
        for tag in ("photo", "noise"):
            for k, v in features(fwd[f"{tag}/input"], w).items():
                put("forward", f"{tag}/{k}", v)
        for k, v in features(fwd["photo/input"], w, pooling="avg").items():
            put("avgpool", f"photo/{k}", v)
    bwd, meta = load(os.path.join(ref, "backward.safetensors"))
    assert json.loads(meta["config"]) == cfg, "the shared goldens' config is not ours"
    x0, content, style = bwd["x"], bwd["content"], bwd["style"]
    with torch.no_grad():
        p = features(content, w, deepest(cfg))[cfg["content_layer"]]
    targets = style_grams(style, cfg, w)
    put("backward", "content_target", p)
    for l, a in zip(cfg["style_layers"], targets):
        put("backward", f"gram_target/{l}", a)
    for k, v in backward_terms(cfg, w, x0, p, targets).items():
        put("backward", k, v)
    a20, meta = load(os.path.join(ref, "adam20.safetensors"))
    x, losses = adam(a20["content"], style_grams(a20["style"], cfg, w), int(meta["iters"]), cfg, w)
    put("adam20", "losses", torch.tensor(losses))
    put("adam20", "x_final", x)
    msk, _ = load(os.path.join(ref, "masked.safetensors"))
    mask_of = {m: msk[f"mask/{m}"] for m in ("left", "disk")}
    # The disk's style (the_scream) is not among the shared inputs as a tensor: its Grams are
    # read from the shared image when present, else taken from the golden (then only the
    # terms built on them are checked, not the Grams themselves).
    scream = os.path.join(shared, "images", "the_scream.jpg")
    disk = (style_grams(image(scream, shorter=160), cfg, w) if os.path.isfile(scream)
            else [msk[f"gram_target/disk/{l}"] for l in cfg["style_layers"]])
    for k, v in masked_terms(cfg, w, msk["x"], mask_of, {"left": targets, "disk": disk}).items():
        if k.startswith("mask/") or (k.startswith("gram_target/disk/") and not os.path.isfile(scream)):
            continue
        put("masked", k, v)
    out = {"note": "tests/oracle/oracle.py's definitions on the inputs of ../shared/reference's "
                   "goldens: statistics of each output (n, sum, abs = sum |v|, l2, dot = sum v * "
                   "(((i * 7919) mod 1009) / 1009 - 0.5), and the values of tensors of at most 64)",
           "goldens": shas, "entries": entries}
    path = os.path.join(GOLDENS, "crosscheck.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, REPO)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("goldens", help="write every golden (and, with shared data, the cross-check)")
    g.add_argument("--weights", help="sqz_notop.mat (default: $STYLIZE_WEIGHTS, shared, the cache)")
    a = ap.parse_args()
    w = weights(find_weights(a.weights))
    os.makedirs(GOLDENS, exist_ok=True)
    shas = make_goldens(w, GOLDENS)
    make_colors_fixture()
    make_masked_run(w)
    shared = shared_dir()
    if shared and os.path.isdir(os.path.join(shared, "reference")):
        crosscheck(w, shared, shas)
    else:
        print("oracle: no shared data ($STYLIZE_SHARED or ../shared): crosscheck.json not updated; "
              "tests/oracle_test.ts fails until it is made again with the shared data")


if __name__ == "__main__":
    main()
