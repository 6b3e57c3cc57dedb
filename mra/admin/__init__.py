"""The administrator's tools, in the spirit of doveadm (README: Operating the server).

protocol.py   the admin socket's requests and answers (JSON lines), checked before use
client.py     the command line's side of the socket (standard library only)
"""
