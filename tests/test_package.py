"""OVF manifest lines and OVA layout, read back by GNU tar, Python's tarfile and Go's archive/tar."""

import gzip
import hashlib
import subprocess
import xml.etree.ElementTree as ET

import pytest

from exports.pipeline.descriptor import write_descriptor_and_manifest
from exports.pipeline.errors import ExportCancelled
from exports.pipeline.names import file_stem
from exports.pipeline.ova import (
    PackageError,
    check_member_names,
    gzip_disks,
    mark_gzip_references,
    write_ova,
)
from exports.pipeline.progress import CancelToken
from tests.tar_readers import gnu_tar_list, go_list, python_list

DESCRIPTOR = '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>'
OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
EIGHT_GIB = 8 << 30
# vSphere allows 80 characters in any script; "/" is stored as %2f; a trailing dot is allowed.
LONG_NAME = ("仮想マシン名" * 14)[:72] + " & #%2f."


def vcenter_descriptor(*hrefs: str) -> str:
    """The References part as vCenter's CreateDescriptor writes it."""
    files = "".join(
        f'<File ovf:href="{href}" ovf:id="file{i}" ovf:size="{100 + i}"/>' for i, href in enumerate(hrefs, 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Envelope xmlns="{OVF_NS}" xmlns:ovf="{OVF_NS}"><References>{files}</References>'
        '<DiskSection><Disk ovf:capacity="8" ovf:diskId="vmdisk1" ovf:fileRef="file1"/></DiskSection>'
        "</Envelope>"
    )


def test_mf_lists_sha256_of_descriptor_and_disks(exported_disks):
    out = exported_disks[0].path.parent
    ovf, mf = write_descriptor_and_manifest(out, "app01", DESCRIPTOR, exported_disks)
    lines = mf.read_text().splitlines()
    assert lines[0] == f"SHA256(app01.ovf)= {hashlib.sha256(ovf.read_bytes()).hexdigest()}"
    assert lines[1:] == [f"SHA256({d.path.name})= {d.sha256}" for d in exported_disks]
    assert not list(out.glob("*.part"))


def test_ova_puts_descriptor_first_then_mf_then_disks(exported_disks, tmp_path):
    out = exported_disks[0].path.parent
    ovf, mf = write_descriptor_and_manifest(tmp_path, "app01", DESCRIPTOR, exported_disks)
    ova = write_ova(out / "app01.ova", [ovf, mf, *[d.path for d in exported_disks]])
    listing = subprocess.run(["tar", "tf", ova], capture_output=True, text=True, check=True).stdout.split()
    assert listing == ["app01.ovf", "app01.mf", "app01-disk1.vmdk", "app01-disk2.vmdk"]
    assert [m["name"] for m in go_list(ova, hash_contents=True)] == listing
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["tar", "xf", ova, "-C", extract], check=True)
    for disk in exported_disks:
        assert hashlib.sha256((extract / disk.path.name).read_bytes()).hexdigest() == disk.sha256


def test_ova_member_over_8_gib_is_written_and_every_reader_sees_its_size(tmp_path):
    # A sparse 8 GiB + 512 B file: the first size a ustar header's octal field cannot hold.
    disk = tmp_path / "big-disk1.vmdk"
    tail = b"last sector of the disk".ljust(512, b"#")
    with open(disk, "wb") as handle:
        handle.write(b"KDMV")
        handle.seek(EIGHT_GIB)
        handle.write(tail)
    ovf = tmp_path / "big.ovf"
    ovf.write_text(DESCRIPTOR)
    ova = write_ova(tmp_path / "big.ova", [ovf, disk])
    size = EIGHT_GIB + 512
    # Holes stay holes: packing a thin disk costs its data, not its size.
    assert ova.stat().st_blocks * 512 < 1 << 20
    members = python_list(ova)
    assert [(m.name, m.size) for m in members] == [("big.ovf", len(DESCRIPTOR)), ("big-disk1.vmdk", size)]
    with open(ova, "rb") as handle:
        handle.seek(members[1].offset_data)
        assert handle.read(4) == b"KDMV"
        handle.seek(members[1].offset_data + size - 512)
        assert handle.read(512) == tail
    assert gnu_tar_list(ova) == [("big.ovf", len(DESCRIPTOR)), ("big-disk1.vmdk", size)]
    assert [(m["name"], m["size"]) for m in go_list(ova)] == [
        ("big.ovf", len(DESCRIPTOR)),
        ("big-disk1.vmdk", size),
    ]


def test_ova_holds_80_character_names_in_any_script(tmp_path):
    names = [f"{LONG_NAME}.ovf", f"{LONG_NAME}.mf", f"{LONG_NAME}-disk1.vmdk"]
    assert all(len(name.encode()) > 100 for name in names)  # longer than a ustar name field
    members = []
    for index, name in enumerate(names):
        path = tmp_path / name
        path.write_bytes(f"member {index}\n".encode() * (index + 1))
        members.append(path)
    ova = write_ova(tmp_path / "named.ova", members)
    expected = [(p.name, p.stat().st_size) for p in members]
    assert [(m.name, m.size) for m in python_list(ova)] == expected
    assert gnu_tar_list(ova) == expected
    listed = go_list(ova, hash_contents=True)
    assert [(m["name"], m["size"]) for m in listed] == expected
    assert [m["sha256"] for m in listed] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in members]


def test_member_name_check_accepts_any_script_and_size_and_refuses_paths():
    check_member_names([f"{LONG_NAME}.ovf", f"{LONG_NAME}-disk1.vmdk"])  # any size, any script
    with pytest.raises(PackageError, match="one plain file name"):
        check_member_names(["../escape.vmdk"])


def test_a_name_no_header_can_hold_leaves_no_partial_ova(tmp_path):
    bad = tmp_path / "disk\udcff.vmdk"  # a file name that is not UTF-8 (byte 0xff)
    bad.write_bytes(b"x")
    ovf = tmp_path / "vm.ovf"
    ovf.write_text(DESCRIPTOR)
    with pytest.raises(PackageError, match="cannot store"):
        write_ova(tmp_path / "vm.ova", [ovf, bad])
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name, "vm.ovf"]


def test_gzip_references_sets_compression_and_the_compressed_size_on_each_file():
    descriptor = vcenter_descriptor("vm-disk1.vmdk", "vm &amp; co-disk2.vmdk", "vm.nvram")
    marked = mark_gzip_references(descriptor, {"vm-disk1.vmdk": 11, "vm & co-disk2.vmdk": 22})
    files = ET.fromstring(marked.encode()).findall(f"{{{OVF_NS}}}References/{{{OVF_NS}}}File")
    attrs = [
        (f.get(f"{{{OVF_NS}}}href"), f.get(f"{{{OVF_NS}}}size"), f.get(f"{{{OVF_NS}}}compression"))
        for f in files
    ]
    assert attrs == [
        ("vm-disk1.vmdk", "11", "gzip"),
        ("vm & co-disk2.vmdk", "22", "gzip"),
        ("vm.nvram", "103", None),
    ]
    # Everything but those File elements is left as vCenter wrote it.
    assert marked.split("<References>")[0] == descriptor.split("<References>")[0]
    assert marked.split("</References>")[1] == descriptor.split("</References>")[1]


def test_gzip_references_finds_names_written_with_character_references():
    # vCenter (Go's encoding/xml) writes " and ' in an attribute as &#34; and &#39;.
    descriptor = vcenter_descriptor("q&#34;u&#39;o&#x60;te-disk1.vmdk")
    marked = mark_gzip_references(descriptor, {"q\"u'o`te-disk1.vmdk": 7})
    (file,) = ET.fromstring(marked.encode()).findall(f"{{{OVF_NS}}}References/{{{OVF_NS}}}File")
    assert (file.get(f"{{{OVF_NS}}}size"), file.get(f"{{{OVF_NS}}}compression")) == ("7", "gzip")


def test_gzip_references_refuses_a_file_the_descriptor_does_not_list():
    with pytest.raises(PackageError, match="no File for other.vmdk"):
        mark_gzip_references(vcenter_descriptor("vm-disk1.vmdk"), {"other.vmdk": 1})


def test_compressed_ova_is_a_plain_tar_of_gzipped_disks_whose_mf_covers_the_stored_bytes(
    exported_disks, tmp_path
):
    staging = tmp_path / "staging"
    staging.mkdir()
    packed = gzip_disks(exported_disks, staging)
    descriptor = mark_gzip_references(
        vcenter_descriptor(*[d.path.name for d in exported_disks]), {d.path.name: d.size for d in packed}
    )
    ovf, mf = write_descriptor_and_manifest(staging, "app01", descriptor, packed)
    ova = write_ova(tmp_path / "app01.ova", [ovf, mf, *[d.path for d in packed]])
    assert ova.read_bytes()[:2] != b"\x1f\x8b"  # not a gzip of the whole tar
    stored = {m["name"]: m for m in go_list(ova, hash_contents=True)}
    assert (
        [m.name for m in python_list(ova)]
        == list(stored)
        == [
            "app01.ovf",
            "app01.mf",
            "app01-disk1.vmdk",
            "app01-disk2.vmdk",
        ]
    )
    mf_lines = mf.read_text().splitlines()
    files = ET.fromstring(ovf.read_bytes()).findall(f"{{{OVF_NS}}}References/{{{OVF_NS}}}File")
    for disk, file in zip(exported_disks, files, strict=True):
        member = stored[disk.path.name]
        assert f"SHA256({disk.path.name})= {member['sha256']}" in mf_lines
        assert file.get(f"{{{OVF_NS}}}size") == str(member["size"])
        assert file.get(f"{{{OVF_NS}}}compression") == "gzip"
        extract = tmp_path / "x"
        subprocess.run(
            ["tar", "xf", ova, "-C", tmp_path, "--transform", "s|.*|x|", disk.path.name], check=True
        )
        assert hashlib.sha256(gzip.decompress(extract.read_bytes())).hexdigest() == disk.sha256
    # The disks the Artifact Manifest points at stay as downloaded.
    assert all(hashlib.sha256(d.path.read_bytes()).hexdigest() == d.sha256 for d in exported_disks)


def test_file_stem_keeps_short_names_and_cuts_long_ones_at_a_character():
    assert file_stem(LONG_NAME) == LONG_NAME  # 224 bytes: every file name still fits
    name = "𠮷𩸽𠀋" * 26 + "𠮷."  # 80 characters, 318 bytes
    stem = file_stem(name)
    cut, _, digest = stem.rpartition("-")
    assert name.startswith(cut) and len(digest) == 8 and stem.encode().decode() == stem
    assert len(f"{stem}-disk999.vmdk.part".encode()) <= 255


def test_a_cancel_while_packing_leaves_neither_ova_nor_part(exported_disks, tmp_path):
    cancel = CancelToken()
    cancel.cancel()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportCancelled):
        write_ova(out / "app01.ova", [d.path for d in exported_disks], cancel)
    with pytest.raises(ExportCancelled):
        gzip_disks(exported_disks, out, cancel)
    assert list(out.iterdir()) == []
