#!/usr/bin/env python3
"""Reads TensorBoard event files (events.out.tfevents.*) without TensorFlow or TensorBoard:
TFRecord framing with both masked CRC-32C checks, then the Event protobuf fields that scalars
use. Written independently of cli/tensorboard.cpp so each can check the other.

  read_tfevents.py FILE_OR_DIR...          one line per scalar: step, tag, value, wall time
  read_tfevents.py --json FILE_OR_DIR...   the same as a JSON list of objects

Exits non-zero, naming the file and offset, on a bad CRC or a truncated record.
"""
import argparse
import datetime
import json
import os
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class FormatError(Exception):
    pass


def records(blob):
    """Yields (offset, data) for each TFRecord: u64 length, u32 masked CRC of the length,
    data, u32 masked CRC of the data, all little-endian."""
    at = 0
    while at < len(blob):
        if at + 12 > len(blob):
            raise FormatError(f"truncated record header at offset {at}")
        (length,) = struct.unpack_from("<Q", blob, at)
        (length_crc,) = struct.unpack_from("<I", blob, at + 8)
        if length_crc != masked_crc32c(blob[at:at + 8]):
            raise FormatError(f"bad length CRC at offset {at}")
        end = at + 12 + length
        if end + 4 > len(blob):
            raise FormatError(f"truncated record at offset {at}")
        data = blob[at + 12:end]
        (data_crc,) = struct.unpack_from("<I", blob, end)
        if data_crc != masked_crc32c(data):
            raise FormatError(f"bad data CRC at offset {at}")
        yield at, data
        at = end + 4


def fields(msg):
    """Yields (field number, wire type, value) of a protobuf message; varints as ints,
    fixed64/fixed32 as raw bytes, length-delimited as bytes."""
    at = 0

    def varint():
        nonlocal at
        value = shift = 0
        while True:
            if at >= len(msg):
                raise FormatError("truncated varint")
            b = msg[at]
            at += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    while at < len(msg):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = msg[at:at + size], at + size
        elif wire == 2:
            size = varint()
            value, at = msg[at:at + size], at + size
        else:
            raise FormatError(f"unsupported wire type {wire}")
        if at > len(msg):
            raise FormatError("truncated field")
        yield number, wire, value


def decode_event(data):
    """tensorflow.Event: 1 wall_time (double), 2 step (int64), 3 file_version (string),
    5 summary (Summary: 1 repeated Value: 1 tag, 2 simple_value (float))."""
    event = {"wall_time": 0.0, "step": 0, "scalars": []}
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            event["file_version"] = value.decode()
        elif number == 5 and wire == 2:
            for vnum, vwire, vbytes in fields(value):
                if vnum != 1 or vwire != 2:
                    continue
                tag, simple = None, None
                for fnum, fwire, fval in fields(vbytes):
                    if fnum == 1 and fwire == 2:
                        tag = fval.decode()
                    elif fnum == 2 and fwire == 5:
                        simple = struct.unpack("<f", fval)[0]
                if tag is not None and simple is not None:  # images, histograms... are skipped
                    event["scalars"].append((tag, simple))
    return event


def read_scalars(path):
    with open(path, "rb") as f:
        blob = f.read()
    rows = []
    for _, data in records(blob):
        event = decode_event(data)
        for tag, value in event["scalars"]:
            rows.append({"step": event["step"], "tag": tag, "value": value, "wall_time": event["wall_time"]})
    return rows


def event_files(target):
    if not os.path.isdir(target):
        return [target]
    found = []
    for root, _, names in os.walk(target):
        found += [os.path.join(root, n) for n in names if "tfevents" in n]
    return sorted(found)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="event files, or directories to search for them")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    args = p.parse_args()
    rows = []
    for target in args.paths:
        for path in event_files(target):
            try:
                for row in read_scalars(path):
                    rows.append(dict(row, file=path) if len(args.paths) > 1 or os.path.isdir(target) else row)
            except (OSError, FormatError) as e:
                sys.exit(f"read_tfevents.py: {path}: {e}")
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return
    for row in rows:
        when = datetime.datetime.fromtimestamp(row["wall_time"]).isoformat(sep=" ", timespec="seconds")
        print(f"{row['step']:>10}  {row['tag']:<24} {row['value']:<14.7g} {when}")


if __name__ == "__main__":
    main()
