import threading

stop = threading.Event()
stop.wait(3600)
