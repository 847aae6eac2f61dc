import OxydraCore

extension SessionHub {
    /// Handles one parsed client frame after `hello`; returns the frames for this connection only
    /// (replies and request errors). Turn frames reach subscribers through ``publish(_:to:)``.
    func handle(_ frame: ClientFrame, connection: ConnectionID) async -> [ServerFrame] {
        switch frame {
        case .hello(let hello):
            return [error(hello.requestID, .protocolError, "hello already negotiated for this websocket connection")]
        case .sendTurn(let turn):
            return submit(turn, connection: connection).map { [$0] } ?? []
        case .cancelActiveTurn(let requestID, let session, let turn):
            return cancel(requestID: requestID, sessionID: session, turnID: turn, connection: connection).map { [$0] }
                ?? []
        case .cancelAllActiveTurns(let requestID):
            return cancelAll(requestID: requestID).map { [$0] } ?? []
        case .healthCheck(let requestID):
            let session = currentSession(of: connection)
            return [
                .healthStatus(
                    HealthInfo(
                        requestID: requestID, healthy: !shuttingDown, session: session.map(ref),
                        activeTurn: session.flatMap { sessions[$0]?.activeTurn?.ref }, startupStatus: startupStatus,
                        message: shuttingDown ? "shutting down" : "gateway ready"))
            ]
        case .createSession(let requestID, let displayName, let agentName):
            do {
                let session = try await createSession(displayName: displayName, agentName: agentName, origin: "tui")
                subscribe(connection, to: session)
                let name = displayName?.trimmed
                return [
                    .sessionCreated(
                        requestID: requestID, session: ref(session.id),
                        displayName: name?.isEmpty == false ? name : nil,
                        agentName: agentName ?? "default")
                ]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .listSessions(let requestID, let includeArchived):
            do {
                return [
                    .sessionList(
                        requestID: requestID, sessions: try await listSessions(includeArchived: includeArchived))
                ]
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        case .switchSession(let requestID, let target):
            do {
                let session = try await resolve(target)
                subscribe(connection, to: session)
                var frames: [ServerFrame] = [
                    .sessionSwitched(
                        requestID: requestID, session: ref(session.id), activeTurn: session.activeTurn?.ref)
                ]
                if session.activeTurn == nil, let terminal = session.lastTerminal { frames.append(terminal) }
                return frames
            } catch {
                return [.error(error.info(requestID: requestID))]
            }
        }
    }
}
