// Original file: csi-driver/proto/csi.proto


export interface CreateSnapshotResponse {
}

export interface CreateSnapshotResponse__Output {
}
