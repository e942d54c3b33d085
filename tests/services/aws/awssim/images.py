"""AMIs as AWS keeps them: moto's RegisterImage drops the block-device mapping (it invents a
snapshot of its own), so the simulator records what was registered or copied and shows it in
DescribeImages; it also refuses what AWS refuses (an unknown or unfinished root snapshot, deleting
a snapshot an image still uses, a name already used in the region)."""
import datetime
import json
import os
import threading
import xml.etree.ElementTree as ET

from . import ec2xml
from .ec2xml import indexed



class Images:
    def __init__(self, state_dir, store, moto, log, admin):
        self.path = os.path.join(state_dir, "images.json")
        self.store, self.moto, self.log, self.admin = store, moto, log, admin
        self.images = {}
        self.ever = set()  # every image id recorded, deregistered ones too (moto keeps their stand-ins)
        self.lock = threading.Lock()
        self.naming = set()  # (region, name) of a RegisterImage or CopyImage on its way to moto

    def _claim_name(self, region, name):
        """AWS: an AMI name is unique among the account's images in a region (RegisterImage and
        CopyImage answer InvalidAMIName.Duplicate). None when `name` is now reserved for the
        caller (release it with _release_name), else the error."""
        with self.lock:
            user = next((i for i, rec in self.images.items()
                         if rec["Region"] == region and rec["Name"] == name), None)
            if user is None and (region, name) in self.naming:
                user = "an image being registered"
            if user is not None:
                return ec2xml.error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {user}")
            self.naming.add((region, name))
            return None

    def _release_name(self, region, name):
        with self.lock:
            self.naming.discard((region, name))

    def _save(self):
        with open(self.path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(self.images, f, indent=1)
        os.replace(self.path + ".tmp", self.path)

    def get(self, image_id):
        with self.lock:
            return self.images.get(image_id)

    def root_snapshot(self, image):
        for m in image["mappings"]:
            if m.get("DeviceName") == image["root"] and m.get("Ebs", {}).get("SnapshotId"):
                return m["Ebs"]["SnapshotId"]
        return None

    def check_snapshot(self, region, sid):
        snap = self.store.get(sid)
        if snap is not None:
            if snap.region != region:
                return ec2xml.error("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist in {region}.")
            if snap.status != "completed":
                return ec2xml.error("IncorrectState", f"Snapshot '{sid}' is {snap.status}, not completed.")
            return None
        try:
            self.admin.ec2(region, "DescribeSnapshots", **{"SnapshotId.1": sid})
        except Exception:  # noqa: BLE001 - moto answers InvalidSnapshot.NotFound
            return ec2xml.error("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
        return None

    def register(self, req, params):
        mappings = []
        for m in indexed(params, "BlockDeviceMapping"):
            ebs = {k[4:]: v for k, v in m.items() if k.startswith("Ebs.")}
            entry = {"DeviceName": m.get("DeviceName")}
            if ebs:
                entry["Ebs"] = ebs
            if m.get("VirtualName"):
                entry["VirtualName"] = m["VirtualName"]
            mappings.append(entry)
        root = params.get("RootDeviceName")
        name = params.get("Name")
        taken = self._claim_name(req.region, name)
        if taken is not None:
            self.log("image-rejected", name=name, body=taken.body.decode())
            return taken
        try:
            return self._register(req, params, mappings, root)
        finally:
            self._release_name(req.region, name)

    def _register(self, req, params, mappings, root):
        upstream = self.moto.forward(req)
        if upstream.status >= 300:
            return upstream
        image_id = ec2xml.text(ec2xml.parse(upstream.body), "imageId")
        problem = None
        if root and not any(m["DeviceName"] == root for m in mappings):
            problem = ec2xml.error("InvalidBlockDeviceMapping",
                                   f"The root device name {root} is not in the block device mapping.")
        for m in mappings:
            sid = m.get("Ebs", {}).get("SnapshotId")
            if problem is None and sid:
                problem = self.check_snapshot(req.region, sid)
        if problem is not None:
            self.admin.ec2(req.region, "DeregisterImage", ImageId=image_id)
            self.log("image-rejected", image=image_id, body=problem.body.decode())
            return problem
        record = {"ImageId": image_id, "Region": req.region, "Name": params.get("Name"), "root": root,
                  "mappings": mappings, "Architecture": params.get("Architecture", "x86_64"),
                  "EnaSupport": params.get("EnaSupport"), "BootMode": params.get("BootMode"),
                  "VirtualizationType": params.get("VirtualizationType", "paravirtual"),
                  "SourceImageId": None}
        with self.lock:
            self.images[image_id] = record
            self.ever.add(image_id)
            self._save()
        self.log("image-registered", image=image_id, region=req.region, root=root,
                 root_snapshot=self.root_snapshot(record))
        return upstream

    def copy(self, req, params):
        encrypted = params.get("Encrypted", "").lower() == "true"
        kms_key = params.get("KmsKeyId")
        if kms_key and not encrypted:  # checked before moto makes the copy
            return ec2xml.error("InvalidParameterDependency",
                                "The parameter KmsKeyId requires the parameter Encrypted to be set.")
        source = self.get(params.get("SourceImageId"))
        name = params.get("Name", source["Name"] if source else None)
        taken = self._claim_name(req.region, name) if source else None
        if taken is not None:
            return taken
        try:
            return self._copy(req, params, source, name, encrypted, kms_key)
        finally:
            if source is not None:
                self._release_name(req.region, name)

    def _copy(self, req, params, source, name, encrypted, kms_key):
        upstream = self.moto.forward(req)
        if upstream.status >= 300:
            return upstream
        new_id = ec2xml.text(ec2xml.parse(upstream.body), "imageId")
        if source is None:
            return upstream
        mappings = json.loads(json.dumps(source["mappings"]))
        for m in mappings:
            sid = m.get("Ebs", {}).get("SnapshotId")
            src = self.store.get(sid) if sid else None
            if src is None:
                continue
            # A copy in the destination region: a moto snapshot record there, its blocks the source's.
            doc = json.loads(self.admin.ebs("POST", req.region, "/snapshots", doc={
                "VolumeSize": src.volume_size, "Description": f"Copied for {new_id} from {sid}"})[1])
            self.admin.ebs("POST", req.region, f"/snapshots/completion/{doc['SnapshotId']}",
                           headers={"x-amz-ChangedBlocksCount": "0"})
            copy = self.store.create(doc["SnapshotId"], req.region, src.volume_size, parent=sid,
                                     description=f"copy of {sid}", source="copy-image")
            self.store.complete(copy)
            m["Ebs"]["SnapshotId"] = copy.id
            if encrypted:  # moto ignores Encrypted/KmsKeyId; AWS encrypts every snapshot of the copy
                m["Ebs"]["Encrypted"] = "true"
                m["Ebs"]["KmsKeyId"] = kms_key or "alias/aws/ebs"
        record = dict(source, ImageId=new_id, Region=req.region, Name=name,
                      mappings=mappings, SourceImageId=source["ImageId"])
        record.pop("DeprecationTime", None)  # not copied, as in AWS
        with self.lock:
            self.images[new_id] = record
            self.ever.add(new_id)
            self._save()
        self.log("image-copied", image=new_id, source=source["ImageId"], region=req.region,
                 source_region=params.get("SourceRegion"), root_snapshot=self.root_snapshot(record),
                 encrypted=encrypted, kms_key=kms_key)
        return upstream

    def deregister(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.status < 300:
            with self.lock:
                if self.images.pop(params.get("ImageId"), None) is not None:
                    self._save()
            self.log("image-deregistered", image=params.get("ImageId"))
        return upstream

    def delete_snapshot(self, req, params):
        sid = params.get("SnapshotId")
        with self.lock:
            users = [i["ImageId"] for i in self.images.values()
                     if any(m.get("Ebs", {}).get("SnapshotId") == sid for m in i["mappings"])]
        if users:  # checked before moto sees it: moto cannot undo a delete
            return ec2xml.error("InvalidSnapshot.InUse", f"The snapshot {sid} is currently in use by {users[0]}")
        upstream = self.moto.forward(req)
        if upstream.status < 300 and self.store.delete(sid):
            self.log("snapshot-deleted", snapshot=sid)
        return upstream

    def describe(self, req, params):
        return ec2xml.edit(self.moto.forward(req), ["imagesSet"], self.show_image)

    def show_image(self, item):
        image = self.get(ec2xml.text(item, "imageId"))
        if image is None:
            return
        old = ec2xml.child(item, "blockDeviceMapping")
        if old is not None:
            item.remove(old)
        bdm = ET.SubElement(item, "blockDeviceMapping")
        for m in image["mappings"]:
            it = ET.SubElement(bdm, "item")
            ET.SubElement(it, "deviceName").text = m["DeviceName"]
            if "VirtualName" in m:
                ET.SubElement(it, "virtualName").text = m["VirtualName"]
            if "Ebs" in m:
                ebs = ET.SubElement(it, "ebs")
                e = dict(m["Ebs"])
                snap = self.store.get(e.get("SnapshotId", ""))
                if "VolumeSize" not in e and snap is not None:
                    e["VolumeSize"] = str(snap.volume_size)
                for key in ("SnapshotId", "VolumeSize", "DeleteOnTermination", "VolumeType", "KmsKeyId", "Encrypted"):
                    if key in e:
                        ET.SubElement(ebs, key[0].lower() + key[1:]).text = str(e[key]).lower() \
                            if key in ("DeleteOnTermination", "Encrypted") else str(e[key])
        if image["root"]:
            ec2xml.set_text(item, "rootDeviceName", image["root"])
            ec2xml.set_text(item, "rootDeviceType", "ebs")
        for key, name in (("Architecture", "architecture"), ("BootMode", "bootMode"),
                          ("VirtualizationType", "virtualizationType"), ("EnaSupport", "enaSupport"),
                          ("DeprecationTime", "deprecationTime")):
            if image.get(key):
                ec2xml.set_text(item, name, str(image[key]).lower() if key == "EnaSupport" else image[key])

    def describe_snapshots(self, req, params):
        """EBS-direct snapshots stay pending until CompleteSnapshot (moto shows them completed at once)."""
        return ec2xml.edit(self.moto.forward(req), ["snapshotSet"], self.show_snapshot)

    def show_snapshot(self, item):
        description = ec2xml.text(item, "description") or ""
        if description.startswith("Auto-created snapshot for AMI ") and description.rsplit(" ", 1)[1] in self.ever:
            return False  # moto's stand-in for a mapping it ignored; AWS has no such snapshot
        snap = self.store.get(ec2xml.text(item, "snapshotId") or "")
        if snap is not None:
            ec2xml.set_text(item, "status", snap.status)
            ec2xml.set_text(item, "progress", "100%" if snap.status == "completed" else "0%")
            ec2xml.set_text(item, "volumeSize", str(snap.volume_size))
            key = self.snapshot_kms_key(snap.id)
            if key:
                ec2xml.set_text(item, "encrypted", "true")
                ec2xml.set_text(item, "kmsKeyId", key)

    def snapshot_kms_key(self, sid):
        """The KMS key of an encrypted copy's snapshot (None: not encrypted)."""
        with self.lock:
            for image in self.images.values():
                for m in image["mappings"]:
                    ebs = m.get("Ebs", {})
                    if ebs.get("SnapshotId") == sid and ebs.get("Encrypted") == "true":
                        return ebs.get("KmsKeyId")
        return None

    # ---- deprecation: moto answers EnableImageDeprecation / DisableImageDeprecation with 500 after
    # its signature and policy check; the simulator keeps the time and shows it in DescribeImages.
    def deprecation(self, req, params):
        upstream = self.moto.forward(req)
        if upstream.auth_failed:
            return upstream
        action, image_id = params.get("Action"), params.get("ImageId", "")
        if params.get("DryRun", "").lower() == "true":
            return ec2xml.error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        with self.lock:
            image = self.images.get(image_id)
            if image is None or image["Region"] != req.region:
                return ec2xml.error("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
            if action == "DisableImageDeprecation":
                image.pop("DeprecationTime", None)
            else:
                given = params.get("DeprecateAt", "")
                try:
                    at = datetime.datetime.fromisoformat(given.replace("Z", "+00:00"))
                    if at.tzinfo is None:
                        at = at.replace(tzinfo=datetime.timezone.utc)
                except ValueError:
                    return ec2xml.error("InvalidParameterValue", f"Invalid value '{given}' for DeprecateAt.")
                # AWS: seconds are rounded to the nearest minute; no time in the past; at most 10 years ahead
                at = (at + datetime.timedelta(seconds=30)).replace(second=0, microsecond=0)
                now = datetime.datetime.now(datetime.timezone.utc)
                if at < now - datetime.timedelta(minutes=1) or at > now + datetime.timedelta(days=3653):
                    return ec2xml.error("InvalidParameterValue",
                                        f"DeprecateAt {given} must be in the future and at most 10 years from now.")
                image["DeprecationTime"] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            self._save()
        self.log("image-deprecation", image=image_id, region=req.region,
                 deprecate_at=image.get("DeprecationTime"))
        return ec2xml.response(action, {"return": True})
