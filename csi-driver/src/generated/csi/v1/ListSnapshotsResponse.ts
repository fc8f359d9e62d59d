// Original file: csi-driver/proto/csi.proto


export interface ListSnapshotsResponse {
}

export interface ListSnapshotsResponse__Output {
}
