"""Build the real-parts development set (docs/real_parts.md).

    python benchmarks/data/real_parts.py --out data/real_parts [--stamps DIR] [--textures DIR]
        [--classes dog,cow,...] [--num-videos 600] [--size 64] [--object-size 0.15,0.35] [--plants 0,3] [--snr-db 5,25] [--events 2,4] [--shared-background] [--seed 0] [--workers 2] [--overwrite]

Real animal photographs and their recorded sounds from Debian's tuxpaint-stamps-default
(--stamps, $GLOCAL_TUXPAINT_STAMPS, or fetched with apt-get download + dpkg -x into
~/.cache/glocal/tuxpaint) over real textures from the scikit-image wheel (--textures,
$GLOCAL_TEXTURES, or fetched with pip download into ~/.cache/glocal/skimage-textures).
The animals reserved for held-out evaluation are never used (glocal.data.synth.realparts.RESERVED_WORDS).
"""

from __future__ import annotations

import argparse
import json
import sys

from glocal.data.synth.realparts import DEFAULT_CLASSES, RealPartsConfig, find_stamps, find_textures, generate_real_parts
from glocal.errors import ConfigError, DataError


def _pair(text: str, kind: type, flag: str) -> tuple:
    """``"lo,hi"`` -> ``(lo, hi)`` of ``kind``; a bad value is a ConfigError naming the flag."""
    try:
        lo, hi = (kind(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} needs two comma-separated numbers lo,hi; got {text!r}") from None
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build the set, print its summary; 2 on bad options or missing media."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--stamps", help="tuxpaint stamps folder (or the dpkg -x root holding usr/share/tuxpaint/stamps)")
    p.add_argument("--textures", help="folder with grass.png, gravel.png, brick.png")
    p.add_argument("--classes", default=",".join(DEFAULT_CLASSES), help="comma-separated animal classes")
    p.add_argument("--num-videos", type=int, default=600)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="frame height = width (even)")
    p.add_argument("--max-distractors", type=int, default=1)
    p.add_argument("--min-distractors", type=int, default=1)
    p.add_argument("--object-size", default="0.15,0.35",
                   help="range of an animal's longer side as a fraction of the frame side, e.g. 0.3,0.5")
    p.add_argument("--plants", default="0,3", help="range of silent plant photos drawn on the background")
    p.add_argument("--snr-db", default="5,25", help="range of the events-to-background-noise ratio in dB")
    p.add_argument("--events", default="2,4", help="range of sound events of the source per video")
    p.add_argument("--shared-background", action="store_true",
                   help="every video over the same background (a diagnostic: no per-video background cue)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--overwrite", action="store_true", help="rebuild when --out holds something else")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        cfg = RealPartsConfig(
            classes=tuple(c.strip() for c in a.classes.split(",") if c.strip()), num_videos=a.num_videos,
            duration=a.duration, fps=a.fps, height=a.size, width=a.size, seed=a.seed,
            min_distractors=a.min_distractors, max_distractors=a.max_distractors,
            object_size=_pair(a.object_size, float, "--object-size"), num_plants=_pair(a.plants, int, "--plants"),
            snr_db=_pair(a.snr_db, float, "--snr-db"), num_events=_pair(a.events, int, "--events"),
            shared_background=a.shared_background,
        )
        summary = generate_real_parts(cfg, a.out, stamps=find_stamps(a.stamps), textures=find_textures(a.textures),
                                      workers=a.workers, progress=not a.quiet, overwrite=a.overwrite)
    except (ConfigError, DataError) as e:
        print(f"real_parts: error: {e}", file=sys.stderr)
        return 2
    state = "already there, nothing written" if summary["skipped"] else f"built in {summary['seconds']:.1f} s"
    print(f"real-parts set {a.out}: {state}")
    print(json.dumps(summary["counts"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
