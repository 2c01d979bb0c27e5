"""The lowest layer: contracts every block follows (no imports from the rest of commsim).

``commsim.core.codec``: the codec contract (encode images to bits, decode LLRs to images).
"""
