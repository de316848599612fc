"""The vision engine: frames in, observations out.

Heavy imports (onnxruntime, openvino, cv2 models) happen when a model loads, never when this package is imported,
so that importing examsite.asgi stays cheap.
"""
