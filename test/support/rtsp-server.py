"""A real RTSP server for the camera tests: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0).

Usage: /usr/bin/python3 rtsp-server.py PORT PHOTO
Mounts: /face, the photo as live H.264 at 10 fps and 960 px wide; /pattern, a moving test pattern (320x240, 10 fps).
Prints "ready PORT" once it listens. PORT 0 picks a free port.
"""
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, photo = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_service(port)
# A keyframe every second, so that a client joining the stream gets a picture within a second.
encoder = 'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1'
mounts = {
    '/face': f'filesrc location={photo} ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=960,height=640 '
             f'! imagefreeze is-live=true ! video/x-raw,framerate=10/1 ! videoconvert ! video/x-raw,format=I420 ! {encoder}',
    '/pattern': f'videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! {encoder}',
}
for path, launch in mounts.items():
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( {launch} )')
    factory.set_shared(True)
    server.get_mount_points().add_factory(path, factory)
server.attach(None)
print('ready', server.get_bound_port(), flush=True)
GLib.MainLoop().run()
