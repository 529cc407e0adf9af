#!/usr/bin/env python3
"""Generate a large synthetic Xpress DC style polling-station CSV for benchmarks.

Usage:
    python3 scripts/gen_xpress_dc.py                 # bench-data/xpress-dc-149MB.csv
    python3 scripts/gen_xpress_dc.py --size 5000000 --out /tmp/small.csv
    python3 scripts/gen_xpress_dc.py --force         # regenerate even if present

The file has the 38-column Xpress DC header, then made-up rows: streets and
towns that are invented, UK postcodes of a valid shape (``HA8 6NB``), some
fields quoted with embedded commas (``"Flat 2, Rose Court"``), a few with
escaped quotes (``""``), some empty fields, ``23/05/2019`` in ElectionDate and
CRLF line endings. No field contains a line break, so every line is one record.

Output is deterministic for a given ``--seed`` and ``--size`` (only
``random.Random.getrandbits`` is used, whose stream is stable across Python
versions). Rows are added until the next one would take the file past
``--size`` bytes, so the file is at most ``--size`` bytes (default 149,000,000,
under the 150,000,000-byte limit the checker enforces).

Beside the CSV a ``<name>.meta.json`` records seed, size limit, generator
version, actual byte size and ``csv_rows`` (records *including* the header
line, as the original checker counted them). If the CSV and its meta file are
present and match the requested parameters and size, the file is reused and
nothing is written. Generation of the default file takes a few seconds.

As a module: ``ensure_dataset(path, size, seed, force=False) -> dict`` (the meta).
"""

import argparse
import json
import os
import random
import sys
import time

GENERATOR_VERSION = 1
DEFAULT_SIZE = 149_000_000
DEFAULT_SEED = 20190523
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "bench-data", "xpress-dc-149MB.csv")

HEADER = (
    "ElectionDate,Contested,Property_URN,AddressLine1,AddressLine2,AddressLine3,"
    "AddressLine4,AddressLine5,Addressline6,Post_Code,Polling_Place_Id,"
    "Polling_Place_Name,Polling_Place_Address_1,Polling_Place_Address_2,"
    "Polling_Place_Address_3,Polling_Place_Address_4,Polling_Place_Postcode,"
    "Polling_Place_Easting,Polling_Place_Northing,Polling_Place_UPRNProperty_URN,"
    "AddressLine11,AddressLine21,AddressLine31,AddressLine41,AddressLine51,"
    "Addressline61,Post_Code1,Polling_Place_District_Reference,Polling_Place_Id1,"
    "Polling_Place_Name1,Polling_Place_Address_11,Polling_Place_Address_21,"
    "Polling_Place_Address_31,Polling_Place_Address_41,Polling_Place_Postcode1,"
    "Polling_Place_Easting1,Polling_Place_Northing1,Polling_Place_UPRN"
)
N_COLUMNS = 38
EOL = "\r\n"

# Invented name parts: combined they give streets and towns that do not exist.
STREET_FIRST = [
    "Acorn", "Alder", "Amber", "Ashdown", "Badger", "Barley", "Beacon", "Birch",
    "Bramble", "Brook", "Buttercup", "Canal", "Castle", "Cedar", "Chapel",
    "Cherry", "Clover", "Copper", "Cowslip", "Daisy", "Elder", "Elm", "Fern",
    "Finch", "Forge", "Fox", "Garnet", "Glebe", "Gorse", "Granary", "Hawthorn",
    "Hazel", "Heron", "Holly", "Juniper", "Kestrel", "Larch", "Laurel", "Linnet",
    "Maple", "Meadow", "Mill", "Mulberry", "Nettle", "Oak", "Orchard", "Osprey",
    "Pebble", "Pippin", "Plover", "Quarry", "Quince", "Raven", "Reed", "Rowan",
    "Saffron", "Sorrel", "Spindle", "Swallow", "Tansy", "Teasel", "Thistle",
    "Tithe", "Weaver", "Willow", "Wren", "Yarrow", "Yew",
]
STREET_KIND = [
    "Street", "Road", "Lane", "Close", "Avenue", "Drive", "Way", "Grove",
    "Crescent", "Gardens", "Terrace", "Mews", "Rise", "Walk", "Place", "Row",
]
TOWN_FIRST = [
    "Ash", "Brad", "Clay", "Dun", "Elm", "Fern", "Glen", "Hart", "Ivy", "Kings",
    "Lang", "Marl", "Nether", "Oak", "Pen", "Quen", "Red", "Sand", "Thorn",
    "Upper", "Wick", "Wold", "Yar", "Stan", "Bram", "Chal", "Ditch", "Fal",
]
TOWN_LAST = [
    "ford", "ley", "ton", "bury", "field", "wick", "stead", "by", "thorpe",
    "ham", "worth", "combe", "mouth", "bridge", "well", "hurst", "dale", "minster",
]
BUILDINGS = [
    "Rose Court", "Ivy House", "Beech Mansions", "Riverside Lodge",
    "Victoria Buildings", "Albion Works", "The Old Dairy", "Heron Quay",
    "Mill House", "Granary Wharf", "Kestrel Point", "Orchard View",
]
PLACE_KIND = [
    "Community Centre", "Village Hall", "Primary School", "Methodist Church",
    "Scout Hut", "Library", "Leisure Centre", "Parish Rooms", "Sports Pavilion",
    "Baptist Church Hall", "Youth Club", "Cricket Club",
]
# Real postcode areas; districts/sectors/units below are random but well formed.
POSTCODE_AREAS = [
    "AB", "B", "BA", "BD", "BN", "BS", "CB", "CF", "CH", "CM", "CO", "CV", "DE",
    "DN", "E", "EH", "EX", "G", "GL", "GU", "HA", "HP", "HU", "IP", "KT", "L",
    "LE", "LS", "M", "ME", "MK", "N", "NE", "NG", "NR", "NW", "OX", "PE", "PL",
    "PO", "RG", "S", "SE", "SN", "SO", "SW", "TN", "W", "WD", "YO",
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters the inward code may use


class Rand:
    """Tiny wrapper using only getrandbits, whose output is version-stable."""

    def __init__(self, seed):
        self._r = random.Random(seed)
        self.bits = self._r.getrandbits

    def below(self, n):
        return self.bits(32) % n

    def pick(self, seq):
        return seq[self.bits(32) % len(seq)]

    def chance(self, percent):
        return self.bits(32) % 100 < percent


def postcode(rnd):
    area = rnd.pick(POSTCODE_AREAS)
    district = str(1 + rnd.below(29 if len(area) == 2 else 20))
    inward = (
        str(rnd.below(10))
        + INWARD_LETTERS[rnd.below(len(INWARD_LETTERS))]
        + INWARD_LETTERS[rnd.below(len(INWARD_LETTERS))]
    )
    return f"{area}{district} {inward}"


def town(rnd):
    return rnd.pick(TOWN_FIRST) + rnd.pick(TOWN_LAST)


def quote(field):
    """Quote a field the way a CSV writer would (only if needed)."""
    if any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def make_address(rnd):
    """Seven fields: AddressLine1..6 and Post_Code, already CSV-encoded."""
    street = f"{rnd.pick(STREET_FIRST)} {rnd.pick(STREET_KIND)}"
    number = 1 + rnd.below(240)
    kind = rnd.below(100)
    if kind < 18:  # a flat in a named building, quoted because of the comma
        lines = [f"Flat {1 + rnd.below(40)}, {rnd.pick(BUILDINGS)}",
                 f"{number} {street}"]
    elif kind < 26:  # a named house, no number
        lines = [f"{rnd.pick(STREET_FIRST)} Cottage", street]
    elif kind < 30:  # a house with a quoted nickname
        lines = [f'The "{rnd.pick(STREET_FIRST)}" House', f"{number} {street}"]
    else:
        lines = [f"{number} {street}"]
    if rnd.chance(35):
        lines.append(f"{rnd.pick(STREET_FIRST)}{rnd.pick(TOWN_LAST)}")  # locality
    lines.append(town(rnd))
    if rnd.chance(50):
        lines.append(rnd.pick(["Middlesex", "Kent", "Wessex", "Mercia", "Shire"]))
    lines += [""] * (6 - len(lines))  # trailing AddressLines left empty
    return ",".join(quote(x) for x in lines[:6]) + "," + postcode(rnd)


def make_station(rnd, station_id):
    """Returns (nine fields Polling_Place_Id..Northing CSV-encoded, UPRN)."""
    name = f"{rnd.pick(STREET_FIRST)} {rnd.pick(PLACE_KIND)}"
    if rnd.chance(10):
        name += ", Main Hall"  # embedded comma
    if rnd.chance(3):
        name = f'St {rnd.pick(STREET_FIRST)}\'s "{rnd.pick(PLACE_KIND)}"'
    addr = [f"{1 + rnd.below(120)} {rnd.pick(STREET_FIRST)} {rnd.pick(STREET_KIND)}",
            town(rnd),
            "" if rnd.chance(60) else rnd.pick(["Middlesex", "Kent", "Wessex"]),
            ""]
    easting = 100000 + rnd.below(550000)
    northing = 10000 + rnd.below(950000)
    uprn = str(10_000_000_000 + rnd.below(90_000_000) * 101)
    fields = [str(station_id), name] + addr + [postcode(rnd), str(easting), str(northing)]
    return ",".join(quote(x) for x in fields), uprn


def generate(path, size, seed):
    rnd = Rand(seed)
    addresses = [make_address(rnd) for _ in range(1 << 15)]
    stations = [make_station(rnd, 4000 + i) for i in range(509)]
    districts = [
        chr(65 + i // 26) + chr(65 + i % 26) + str(1 + rnd.below(9)) for i in range(509)
    ]
    a_mask = (1 << 15) - 1

    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    header = (HEADER + EOL).encode("ascii")
    assert len(HEADER.split(",")) == N_COLUMNS
    written = len(header)
    records = 1  # header counts, as in the original checker's csv_rows
    urn = 100_000_000
    block_target = 8 << 20
    with open(tmp, "wb", buffering=0) as f:
        f.write(header)
        done = False
        while not done:
            parts = []
            block_len = 0
            while block_len < block_target:
                r = rnd.bits(64)
                urn += 1 + (r & 7)
                addr = addresses[(r >> 3) & a_mask]
                si = ((r >> 18) & 0xFFFF) % 509
                st, uprn = stations[si]
                if (r >> 34) & 15 == 0:  # second election in a different district
                    sj = ((r >> 38) & 0xFFFF) % 509
                else:
                    sj = si
                st2, uprn2 = stations[sj]
                contested = "1" if (r >> 54) & 3 else "0"
                line = (
                    f"23/05/2019,{contested},{urn},{addr},{st},{uprn},"
                    f"{addr},{districts[sj]},{st2},{uprn2}{EOL}"
                )
                n = len(line)  # ASCII only, so characters == bytes
                if written + block_len + n > size:
                    done = True
                    break
                parts.append(line)
                block_len += n
            f.write("".join(parts).encode("ascii"))
            written += block_len
            records += len(parts)
    os.replace(tmp, path)
    return written, records


def meta_path(path):
    return path + ".meta.json"


def ensure_dataset(path=DEFAULT_OUT, size=DEFAULT_SIZE, seed=DEFAULT_SEED, force=False,
                   log=sys.stderr):
    """Generate the file unless an identical one (per its meta file) is present."""
    want = {"generator_version": GENERATOR_VERSION, "seed": seed, "size_limit": size}
    mp = meta_path(path)
    if not force and os.path.exists(path) and os.path.exists(mp):
        try:
            with open(mp) as f:
                meta = json.load(f)
            if all(meta.get(k) == v for k, v in want.items()) and \
                    os.path.getsize(path) == meta.get("bytes"):
                print(f"reusing {path} ({meta['bytes']:,} bytes, "
                      f"{meta['csv_rows']:,} rows)", file=log)
                return meta
        except (OSError, ValueError, KeyError):
            pass
    print(f"generating {path} (<= {size:,} bytes, seed {seed}) ...", file=log)
    t0 = time.perf_counter()
    written, records = generate(path, size, seed)
    meta = dict(want, bytes=written, csv_rows=records, columns=N_COLUMNS,
                line_ending="CRLF", delimiter=",", encoding="ascii")
    assert os.path.getsize(path) == written
    with open(mp, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"generated {written:,} bytes, {records:,} rows in "
          f"{time.perf_counter() - t0:.1f} s", file=log)
    return meta


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="CSV path (default %(default)s)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help="maximum file size in bytes (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--force", action="store_true", help="regenerate even if present")
    a = p.parse_args()
    meta = ensure_dataset(a.out, a.size, a.seed, a.force)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
