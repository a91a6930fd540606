"""Faces into Caffe LMDB: Datum codec, LMDB writer/reader, face crop, synthetic faces, mean."""
